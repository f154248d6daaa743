//! Slow and hostile clients on other loopback addresses (127.0.0.2 and up) while a normal
//! client on 127.0.0.1 keeps working: every one of its requests must succeed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aperture_server::testing::{SlowClients, Slowness};

use crate::{Server, init_with};

#[test]
fn slow_clients_on_other_addresses_do_not_lock_out_the_rest() {
    let (lake, admin) = init_with("[server]\nmax_connections_per_address = 20\n");
    let server = Server::start(&lake, &admin);
    let target: SocketAddr = server.url.strip_prefix("http://").unwrap().parse().unwrap();
    // Fifty of each kind, each kind from its own three addresses.
    let kinds = [
        Slowness::Silent,
        Slowness::Headers,
        Slowness::Body,
        Slowness::PartHeaders,
    ];
    let slow: Vec<SlowClients> = {
        let _runtime = lake.runtime.enter();
        kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| SlowClients::start_from(target, 2 + 3 * i, 50, 20, &[*kind]))
            .collect()
    };
    let open = || slow.iter().map(SlowClients::open).sum::<usize>();
    let started = Instant::now();
    while open() < 140 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "slow clients did not connect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // One address over its limit: its extra connections are answered 503 and closed at once.
    let answers = lake.runtime.block_on(async {
        use tokio::io::AsyncReadExt;
        let mut held = Vec::new();
        for _ in 0..25 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.200:0".parse().unwrap()).unwrap();
            held.push(socket.connect(target).await.unwrap());
        }
        // Read all at once: the header timeout closes the silent ones after 10 s.
        futures::future::join_all(held.iter_mut().map(|stream| async move {
            let mut got = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_millis(1000), stream.read_to_end(&mut got))
                    .await;
            (read.is_ok(), String::from_utf8_lossy(&got).into_owned())
        }))
        .await
    });
    let refused: Vec<_> = answers.iter().filter(|(closed, _)| *closed).collect();
    assert_eq!(refused.len(), 5, "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|(_, text)| text.starts_with("HTTP/1.1 503")
                && text.contains("too_many_connections")),
        "{refused:?}"
    );

    // The normal client: every request answered, while the slow ones are held and then cut.
    let mut slowest = Duration::ZERO;
    for _ in 0..40 {
        let asked = Instant::now();
        let (status, body) = server.call("GET", "/api/v1/me", Some(&admin));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        slowest = slowest.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        slowest < Duration::from_secs(5),
        "a request took {slowest:?}"
    );
    // By now (over 12 s) the server has cut every connection of every kind at least once:
    // silent and slow headers at the header timeout, trickled bodies below the minimum rate,
    // endless part headers at their bound.
    for (kind, clients) in kinds.iter().zip(&slow) {
        assert!(clients.cut() >= 50, "{kind:?}: only {} cut", clients.cut());
    }
}
