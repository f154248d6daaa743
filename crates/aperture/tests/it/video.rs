//! Video as a user meets it: ingest, `index` with the real models, shots in `show`, search that
//! names the moment, a frame out with `get --frame`, `similar ID@TIME`, and near-duplicate
//! videos grouped.

use std::path::{Path, PathBuf};

use aperture_media::fixtures::ffmpeg;

use crate::real_media::with_models;
use crate::search::asset_id;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// 25 fps, 640×360, 9 s: a moving test pattern (0–3 s), a cut to colour bars with the caption
/// "HARBOUR CLOSED" (3–6 s), a cut to a Mandelbrot zoom (6–9 s).
fn reel(dir: &Path) -> PathBuf {
    let caption = format!(
        "drawtext=fontfile={FONT}:text=HARBOUR CLOSED:fontsize=56:fontcolor=white:\
         box=1:boxcolor=black:boxborderw=12:x=(w-text_w)/2:y=h-text_h-40"
    );
    ffmpeg(
        dir,
        &[
            "-filter_complex",
            &format!(
                "testsrc2=s=640x360:r=25:d=3,format=yuv420p,setsar=1[a];\
                 smptebars=s=640x360:r=25:d=3,{caption},format=yuv420p,setsar=1[b];\
                 mandelbrot=s=640x360:r=25,trim=duration=3,setpts=PTS-STARTPTS,\
                 format=yuv420p,setsar=1[c];\
                 [a][b][c]concat=n=3:v=1:a=0[out]"
            ),
            "-map",
            "[out]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
        ],
        "reel.mp4",
    )
}

#[test]
fn shots_moments_frames_and_near_duplicate_videos() {
    let ap = with_models();
    let dir = ap.inputs();
    let reel = reel(&dir);
    let reel_path = reel.to_str().unwrap();
    // A re-encode (smaller, another codec setting), the first two thirds, and another video.
    ffmpeg(
        &dir,
        &[
            "-i",
            reel_path,
            "-vf",
            "scale=480:270",
            "-c:v",
            "libx264",
            "-crf",
            "30",
        ],
        "reel-small.mp4",
    );
    ffmpeg(
        &dir,
        &["-i", reel_path, "-t", "6", "-c:v", "libx264"],
        "reel-trim.mp4",
    );
    ffmpeg(
        &dir,
        &[
            "-f",
            "lavfi",
            "-i",
            "life=s=320x240:r=25:mold=10:ratio=0.5:death_color=#203040,trim=duration=4",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        "other.mp4",
    );
    // A damaged video in the same batch: its own job fails, naming it; the others go on.
    let bytes = std::fs::read(&reel).unwrap();
    std::fs::write(dir.join("broken.mp4"), &bytes[..bytes.len() / 3]).unwrap();
    ap.ingest(&dir, "videos");
    let index = ap.run(&["index", "--no-progress"]);
    assert!(
        String::from_utf8_lossy(&index.stdout).contains("failed"),
        "{}",
        String::from_utf8_lossy(&index.stdout)
    );
    let broken = ap.ok(&["show", &asset_id(&ap, "broken.mp4")]);
    assert!(
        broken.contains("video        failed: broken.mp4")
            || broken.contains("video        failed: cannot decode broken.mp4"),
        "{broken}"
    );
    assert!(!broken.contains("shots "), "nothing half-written: {broken}");

    let id = asset_id(&ap, "reel.mp4");
    let shown = ap.ok(&["show", &id]);
    assert!(shown.contains("shots        3"), "{shown}");
    assert!(shown.contains("00:00:03–00:00:06  cut"), "{shown}");
    assert!(shown.contains("HARBOUR"), "{shown}");

    // Words on screen find the moment.
    let found = ap.ok(&["search", "harbour"]);
    assert!(found.contains("reel.mp4"), "{found}");
    assert!(
        found.contains("ocr: «HARBOUR» CLOSED [00:00:03–00:00:06]"),
        "{found}"
    );
    let hits = ap.json(&["search", "harbour"]);
    let reasons = hits[0]["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r["place"]["type"] == "time" && r["place"]["start_ms"] == 3000),
        "{hits}"
    );

    // A frame out, at the size of the video.
    let frame = dir.join("out/frame.jpg");
    std::fs::create_dir_all(frame.parent().unwrap()).unwrap();
    ap.ok(&[
        "get",
        &id,
        "--frame",
        "00:00:04",
        "-o",
        frame.to_str().unwrap(),
    ]);
    let image = image::open(&frame).unwrap();
    assert_eq!((image.width(), image.height()), (640, 360));
    let bad = ap.run(&["get", &id, "--frame", "soon", "-o", frame.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a time"));

    // The caption shot's likeness: the same shot in the copies, not the other video.
    let similar = ap.ok(&["similar", &format!("{id}@00:00:04")]);
    let first = similar.lines().find(|l| l.contains(".mp4")).unwrap_or("");
    assert!(
        first.contains("reel-small.mp4") || first.contains("reel-trim.mp4"),
        "{similar}"
    );
    assert!(similar.contains("[00:00:03–00:00:06]"), "{similar}");

    // Near-duplicate videos: the reel, its re-encode and its trim; not the other one.
    let groups = ap.json(&["duplicates"]);
    let names: Vec<Vec<String>> = groups
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["kind"] == "near")
        .map(|g| {
            let mut members: Vec<String> = g["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let id = m["asset"].as_str().unwrap().replace('-', "");
                    ap.assets()
                        .iter()
                        .find(|a| a["id"].as_str().unwrap().replace('-', "") == id)
                        .unwrap()["name"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            members.sort();
            members
        })
        .collect();
    assert_eq!(
        names,
        [["reel-small.mp4", "reel-trim.mp4", "reel.mp4"]],
        "{groups}"
    );
}

/// With `[video] chunk_secs = 5`, the 9-second reel is analysed in two parts; two `aperture
/// index` processes started at once on one data folder finish it together (which takes which
/// part is up to the queue; the lake's tests pin that down), the shots are those of one pass
/// (the shot from 3 to 6 s runs across the edge at 5 s and stays one), and no part is left.
#[test]
fn a_video_longer_than_a_chunk_is_analysed_in_parts_by_two_processes() {
    let ap = crate::Aperture::init();
    let config = ap.data().join("aperture.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("chunk_secs = 600"), "{text}");
    // The first is `[video]`'s (`[speech]` has its own).
    std::fs::write(
        &config,
        text.replacen("chunk_secs = 600", "chunk_secs = 5", 1),
    )
    .unwrap();
    let dir = ap.inputs();
    reel(&dir);
    ap.ingest(&dir, "videos");
    let id = asset_id(&ap, "reel.mp4");

    let index = || {
        ap.command(&["index", "--no-progress"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut one, mut two) = (index(), index());
    assert!(one.wait().unwrap().success() && two.wait().unwrap().success());

    let shown = ap.ok(&["show", &id]);
    assert!(shown.contains("video        succeeded"), "{shown}");
    assert!(!shown.contains("part "), "no part is left: {shown}");
    assert!(shown.contains("shots        3"), "{shown}");
    for line in [
        "00:00:00–00:00:03  start",
        "00:00:03–00:00:06  cut",
        "00:00:06–00:00:09  cut",
    ] {
        assert!(shown.contains(line), "{line}: {shown}");
    }
    let frame = dir.join("frame.jpg");
    ap.ok(&[
        "get",
        &id,
        "--frame",
        "00:00:05",
        "-o",
        frame.to_str().unwrap(),
    ]);
    assert!(image::open(&frame).is_ok());
}
