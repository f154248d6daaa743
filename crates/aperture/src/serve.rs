//! `aperture serve`: binds the address and hands the lake to `aperture-server`.

use std::process::ExitCode;

use anyhow::Context;
use aperture_lake::Lake;
use tokio::net::TcpListener;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (default from the config: 127.0.0.1:7878); port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Analysis workers to run in this process (default from the config).
    #[arg(long)]
    workers: Option<usize>,
}

pub async fn run(lake: Lake, args: Args) -> anyhow::Result<ExitCode> {
    let listen = args
        .listen
        .unwrap_or_else(|| lake.config.server.listen.clone());
    let workers = args.workers.unwrap_or(lake.config.server.workers);
    let data_dir = lake.config.data_dir.clone();
    let state = aperture_server::State::new(lake).await?;
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // The first line on stdout, for scripts that start the server on port 0.
    println!("listening on http://{addr}");
    eprintln!(
        "Aperture serves {} at http://{addr}/ (Ctrl-C stops it)",
        data_dir.display()
    );
    aperture_server::run(state, listener, workers, crate::index::stop_signal()).await?;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}
