#!/usr/bin/env python3
"""PySceneDetect as the peer of Aperture's shot-detection bench.

    python3 scripts/bench/scenedetect_peer.py FILE --detector content|adaptive [--threads N]

Runs PySceneDetect with its default settings (open_video with the OpenCV backend, one
SceneManager, ContentDetector() or AdaptiveDetector(), detect_scenes) and prints one JSON line:
  {"detector": ..., "seconds": wall time of open + decode + detection, "frames": frames processed,
   "cuts": [first frame of each new scene, 0-based, frame 0 left out], ...}
--threads N caps OpenCV's own threads and FFmpeg's decoding threads (default: OpenCV's choice).
Needs the venv of scripts/bench/setup-peers.sh.
"""
import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("file")
ap.add_argument("--detector", choices=["content", "adaptive"], required=True)
ap.add_argument("--threads", type=int, default=0, help="0 = OpenCV's default")
args = ap.parse_args()

if args.threads > 0:
    # Read by OpenCV's FFmpeg backend when a capture opens; must be set before cv2 loads.
    os.environ["OPENCV_FFMPEG_THREADS"] = str(args.threads)
import cv2  # noqa: E402
import scenedetect  # noqa: E402
from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video  # noqa: E402

if args.threads > 0:
    cv2.setNumThreads(args.threads)

start = time.perf_counter()
video = open_video(args.file)  # default backend: OpenCV
manager = SceneManager()
manager.add_detector(ContentDetector() if args.detector == "content" else AdaptiveDetector())
frames = manager.detect_scenes(video, show_progress=False)
scenes = manager.get_scene_list()
seconds = time.perf_counter() - start

# Each scene is (start, end); the start of every scene after the first is a cut.
cuts = [s.frame_num for s, _ in scenes[1:]]
print(json.dumps({
    "detector": args.detector,
    "seconds": round(seconds, 3),
    "frames": frames,
    "cuts": cuts,
    "threads": args.threads or None,
    "scenedetect": scenedetect.__version__,
    "opencv": cv2.__version__,
}))
sys.stdout.flush()
