//! Latency of a normal client while slow clients hold connections: `BENCH_SLOW` of them
//! (default 1,000) from loopback addresses 127.0.0.2 and up (`BENCH_PER_ADDRESS` each,
//! default 50), silent, trickling headers or trickling a sign-in body, plus `BENCH_HOSTILE`
//! (default 100) sending endless multipart part headers; all reconnect whenever the server
//! cuts them. The normal client, on 127.0.0.1,
//! asks `GET /api/v1/me` and `GET /api/v1/assets` one after the other for `BENCH_SECS`
//! seconds (default 30) per phase: first with no slow clients, then with them. Prints a table.
//!
//! ```sh
//! cargo bench -p aperture-server --bench slow_clients
//! ```

use std::time::{Duration, Instant};

use aperture_lake::Lake;
use aperture_server::testing::{Client, SlowClients, Slowness};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The normal client's latencies, in order; panics at any answer but 200.
fn normal_client(client: &Client, secs: u64) -> Vec<Duration> {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut took = Vec::new();
    let paths = ["/api/v1/me", "/api/v1/assets?limit=20"];
    while Instant::now() < until {
        let path = paths[took.len() % paths.len()];
        let asked = Instant::now();
        let (status, body) = client.call("GET", path, Some(&client.admin));
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        took.push(asked.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    took.sort();
    took
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let slow_count = env_usize("BENCH_SLOW", 1000);
    let hostile_count = env_usize("BENCH_HOSTILE", 100);
    let per_address = env_usize("BENCH_PER_ADDRESS", 50);
    let secs = env_usize("BENCH_SECS", 30) as u64;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let made = runtime
        .block_on(Lake::init(&data, None, Vec::new(), "bench"))
        .unwrap();
    let admin = made.admin_token.unwrap();
    let state = runtime
        .block_on(aperture_server::State::new(made.lake))
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let target = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = runtime.spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        aperture_server::run(state, listener, 0, shutdown)
            .await
            .unwrap();
    });
    let client = Client {
        url: format!("http://{target}"),
        admin,
    };

    let idle = normal_client(&client, secs);
    let slow = {
        let _entered = runtime.enter();
        SlowClients::start(
            target,
            slow_count,
            per_address,
            &[Slowness::Silent, Slowness::Headers, Slowness::Body],
        )
    };
    // From addresses after the slow clients'.
    let hostile = {
        let _entered = runtime.enter();
        SlowClients::start_from(
            target,
            2 + slow_count.div_ceil(per_address),
            hostile_count,
            per_address,
            &[Slowness::PartHeaders],
        )
    };
    let started = Instant::now();
    while slow.open() < slow_count * 9 / 10 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let held_at_start = slow.open();
    let attacked = normal_client(&client, secs);
    let (held_at_end, cut) = (slow.open(), slow.cut());
    let hostile_cut = hostile.cut();
    drop((slow, hostile));
    let _ = stop.send(());
    let _ = runtime.block_on(served);

    println!(
        "\nnormal client on 127.0.0.1 ({secs} s a phase; one request at a time); {slow_count} \
         slow clients from {} addresses, {per_address} each; {hostile_count} more sending \
         endless part headers, cut {hostile_cut} times\n",
        slow_count.div_ceil(per_address)
    );
    println!(
        "| phase | requests | p50 ms | p99 ms | max ms | slow connections held | cut by the server |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (phase, took, held, cut) in [
        ("no slow clients", &idle, "0".to_owned(), "-".to_owned()),
        (
            "slow clients",
            &attacked,
            format!("{held_at_start} at start, {held_at_end} at end"),
            cut.to_string(),
        ),
    ] {
        println!(
            "| {phase} | {} | {:.1} | {:.1} | {:.1} | {held} | {cut} |",
            took.len(),
            quantile(took, 0.5),
            quantile(took, 0.99),
            quantile(took, 1.0),
        );
    }
}
