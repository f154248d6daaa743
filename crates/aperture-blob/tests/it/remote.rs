//! Real S3 and Azure servers, as `scripts/services.sh start` runs them: the environment
//! names them, and a test without its server says it skipped (and fails under CI, so that
//! CI never skips silently).
//!
//! - `APERTURE_TEST_S3_URL` (`s3://bucket`), `APERTURE_TEST_S3_OPTIONS` (object_store options,
//!   `key=value` separated by spaces), and `APERTURE_TEST_S3_SERVER` (the server's program,
//!   for the test that kills it) and `APERTURE_TEST_S3_KEY_ID` / `_SECRET` for the server it
//!   starts.
//! - `APERTURE_TEST_AZURE_URL` (`az://container`) and `APERTURE_TEST_AZURE_OPTIONS`.

use std::net::TcpListener;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aperture_blob::{BlobStore, Error};
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

use crate::conformance::content;

/// S3's smallest part (but the last): real servers refuse smaller ones at completion.
pub const S3_PART: usize = 5 * 1024 * 1024;
/// Azure blocks have no minimum; small parts keep the suite quick.
pub const AZURE_PART: usize = 64 * 1024;

/// A server's URL and options, from the environment.
#[derive(Clone)]
pub struct Service {
    pub url: String,
    pub options: Vec<(String, String)>,
}

impl Service {
    /// The options with `key` set to `value`.
    fn with(&self, key: &str, value: &str) -> Vec<(String, String)> {
        let mut options: Vec<_> = self
            .options
            .iter()
            .filter(|(k, _)| k != key)
            .cloned()
            .collect();
        options.push((key.to_owned(), value.to_owned()));
        options
    }
}

/// Reads `APERTURE_TEST_{kind}_URL` and `_OPTIONS`; `None` (said on stderr) when unset,
/// a panic when CI is set.
pub fn service(kind: &str) -> Option<Service> {
    let var = format!("APERTURE_TEST_{kind}_URL");
    let Ok(url) = std::env::var(&var) else {
        skip(&var);
        return None;
    };
    let options = std::env::var(format!("APERTURE_TEST_{kind}_OPTIONS"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Some(Service { url, options })
}

fn skip(var: &str) {
    if std::env::var_os("CI").is_some() {
        panic!(
            "{var} is not set, and CI is: start the servers first (eval \"$(bash scripts/services.sh start)\")"
        );
    }
    eprintln!("skipped: {var} is not set (eval \"$(bash scripts/services.sh start)\")");
}

/// A store under a fresh prefix of the service's bucket, so tests running at once do not
/// see each other's blobs.
async fn fresh(service: &Service, part: usize) -> BlobStore {
    let url = format!(
        "{}/{}",
        service.url.trim_end_matches('/'),
        uuid::Uuid::now_v7().simple()
    );
    let store = BlobStore::open_url(&url, service.options.clone())
        .unwrap()
        .with_part_size(part);
    store.init().await.unwrap();
    store
}

pub async fn s3(_dir: &FsPath) -> Option<BlobStore> {
    Some(fresh(&service("S3")?, S3_PART).await)
}

pub async fn azure(_dir: &FsPath) -> Option<BlobStore> {
    Some(fresh(&service("AZURE")?, AZURE_PART).await)
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Opens and initialises a store that must fail, and checks that it fails soon, as
/// [`Error::Unavailable`], naming the URL and `problem`.
async fn refused(url: &str, options: Vec<(String, String)>, problem: &str) {
    let started = Instant::now();
    let store = BlobStore::open_url(url, options).unwrap();
    let err = store.init().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(url), "{text}");
    assert!(text.contains(problem), "{text}: {err:?}");
    assert!(
        elapsed < Duration::from_secs(10),
        "{text}: took {elapsed:?}"
    );
}

#[tokio::test]
async fn s3_problems_are_clear_errors_within_seconds() {
    let Some(s3) = service("S3") else { return };
    let missing = format!("s3://aperture-missing-{}", uuid::Uuid::now_v7().simple());
    refused(&missing, s3.options.clone(), "does not exist").await;
    refused(
        &s3.url,
        s3.with("aws_secret_access_key", "not-the-secret"),
        "credentials were refused",
    )
    .await;
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    refused(
        &s3.url,
        s3.with("aws_endpoint", &endpoint),
        "does not answer",
    )
    .await;
}

#[tokio::test]
async fn azure_problems_are_clear_errors_within_seconds() {
    let Some(az) = service("AZURE") else { return };
    let missing = format!("az://aperture-missing-{}", uuid::Uuid::now_v7().simple());
    refused(&missing, az.options.clone(), "does not exist").await;
    // A well-formed key (base64 of 64 bytes) that is not the account's.
    let wrong = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmct";
    refused(
        &az.url,
        az.with("azure_storage_account_key", wrong),
        "credentials were refused",
    )
    .await;
    let endpoint = format!("http://127.0.0.1:{}/devstoreaccount1", closed_port());
    refused(
        &az.url,
        az.with("azure_storage_endpoint", &endpoint),
        "does not answer",
    )
    .await;
}

/// An S3 server of our own, which the test may kill: `APERTURE_TEST_S3_SERVER` (s3s-fs)
/// serving `root`, where each folder is a bucket.
struct OwnS3 {
    program: PathBuf,
    root: PathBuf,
    port: u16,
    key: (String, String),
    child: Option<Child>,
}

impl OwnS3 {
    fn start(program: PathBuf, root: PathBuf) -> Self {
        let mut server = Self {
            program,
            root,
            port: closed_port(),
            key: ("aperture-fault".into(), "aperture-fault-secret".into()),
            child: None,
        };
        server.restart();
        server
    }

    fn restart(&mut self) {
        let child = Command::new(&self.program)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", &self.key.0, "--secret-key", &self.key.1])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "S3 server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash or an OOM kill would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", format!("http://127.0.0.1:{}", self.port)),
            ("aws_access_key_id", self.key.0.clone()),
            ("aws_secret_access_key", self.key.1.clone()),
            ("aws_region", "us-east-1".into()),
            ("aws_allow_http", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl Drop for OwnS3 {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_killed_mid_upload_leaves_no_partial_blob() {
    let Ok(program) = std::env::var("APERTURE_TEST_S3_SERVER") else {
        skip("APERTURE_TEST_S3_SERVER");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    std::fs::create_dir_all(root.join("fault")).unwrap();
    let mut server = OwnS3::start(program.into(), root);
    let s3 = BlobStore::open_url("s3://fault", server.options()).unwrap();
    let parts = Arc::new(AtomicUsize::new(0));
    let store = BlobStore::new(Arc::new(CountParts {
        inner: s3.object_store().clone(),
        done: parts.clone(),
    }))
    .with_part_size(S3_PART)
    .with_upload_on_publish(true);
    s3.init().await.unwrap();

    let big = dir.path().join("big");
    let bytes = content(12 * S3_PART + 100, 11);
    std::fs::write(&big, &bytes).unwrap();
    let staged = store.stage_file(&big).await.unwrap();
    let hash = staged.hash();
    let upload = tokio::spawn({
        let store = store.clone();
        async move { store.publish(staged).await }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while parts.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "no part was uploaded");
        assert!(!upload.is_finished(), "the upload ended before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let failed = tokio::time::timeout(Duration::from_secs(60), upload)
        .await
        .expect("the upload must fail, not hang, when the server dies")
        .unwrap();
    let err = failed.expect_err("the server died mid-upload");
    eprintln!("upload failed as it should: {err}");
    assert!(
        parts.load(Ordering::SeqCst) < 13,
        "every part went up before the kill"
    );

    server.restart();
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    assert!(listed.is_empty(), "partial blob listed: {listed:?}");
    assert_eq!(store.size(hash).await.unwrap(), None);
    assert!(matches!(store.get(hash).await, Err(Error::NotFound { .. })));

    let staged = store.stage_file(&big).await.unwrap();
    assert!(store.publish(staged).await.unwrap());
    assert_eq!(store.verify(hash).await.unwrap(), bytes.len() as u64);
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
}

/// Counts the parts of multipart uploads that the server has taken.
#[derive(Debug)]
struct CountParts {
    inner: Arc<dyn ObjectStore>,
    done: Arc<AtomicUsize>,
}

impl std::fmt::Display for CountParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CountParts({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountParts {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountedUpload {
            inner,
            done: self.done.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[derive(Debug)]
struct CountedUpload {
    inner: Box<dyn MultipartUpload>,
    done: Arc<AtomicUsize>,
}

#[async_trait]
impl MultipartUpload for CountedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let part = self.inner.put_part(data);
        let done = self.done.clone();
        Box::pin(async move {
            part.await?;
            done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}
