//! Prints the shots the `video` analyzer's detector finds in a file: `shots FILE [FPS]`.
fn main() {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().expect("usage: shots FILE [FPS]"));
    let fps: f64 = args
        .next()
        .map_or(25.0, |f| f.parse().expect("FPS is a number"));
    let opts = aperture_media::video::DecodeOptions::default();
    let mut detector = aperture_analyze::video::shots::Detector::new(fps, Default::default());
    for frame in aperture_media::video::frames(&path, "file", fps, &opts).unwrap() {
        detector.push(&frame.unwrap().image);
    }
    let found = detector.finish();
    for b in &found.boundaries {
        println!("{:?} {} {}", b.kind, b.start, b.end);
    }
    for s in &found.shots {
        println!(
            "shot {}..{} {:?} {:?} key {:?}",
            s.start, s.end, s.transition, s.content, s.keyframe
        );
    }
}
