#!/usr/bin/env python3
"""Score detected shot transitions against a ground-truth edit list.

    python3 scripts/bench/score_cuts.py GROUND_TRUTH.json CUTS.json

GROUND_TRUTH.json: {"transitions": [{"type": "cut", "frame": F},
                                    {"type": "fade"|"dissolve", "start": S, "end": E}, ...]}
CUTS.json:         {"cuts": [F, ...], "gradual": [[S, E], ...]}   ("gradual" may be absent)
Frames are 0-based; a cut's frame is the first frame of the new shot; spans are inclusive.

Rules (the Rust bench uses the same):
  gap(A, B)  between two inclusive frame intervals (a cut F is [F, F]):
             max(A.start, B.start) - min(A.end, B.end); <= 0 means they overlap.
  may match  cut-cut, cut-span, span-cut: gap <= 2 (TOL);  span-span: gap <= 0 (overlap >= 1 frame).
  matching   one-to-one and greedy: all allowed (detected, truth) pairs sorted by (gap, truth
             index, detected index), each taken if both sides are still free.
  cuts       detected cuts vs true cuts. A detected cut left unmatched that lies within TOL of a
             true gradual transition is set aside ("in_gradual"): neither TP nor FP here.
  gradual    detected spans vs true gradual transitions.
  all        every detection (cuts and spans) vs every true transition, any type with any type;
             this is where several detections in one gradual transition become false positives.
  P = tp/(tp+fp), R = tp/(tp+fn), F1 = 2PR/(P+R); an empty denominator gives 1.0 when there is
  nothing to find and nothing found, else 0.0.
Prints one line per score, then all of it as one JSON line.
"""
import json
import sys

TOL = 2


def gap(a, b):
    return max(a[0], b[0]) - min(a[1], b[1])


def allowed(d, t):
    both_spans = d[0] != d[1] and t[0] != t[1]
    return gap(d, t) <= (0 if both_spans else TOL)


def match(dets, truths):
    """Greedy one-to-one matching; returns {detected index: truth index}."""
    pairs = sorted((gap(d, t), ti, di) for di, d in enumerate(dets)
                   for ti, t in enumerate(truths) if allowed(d, t))
    used_d, used_t = {}, set()
    for _, ti, di in pairs:
        if di not in used_d and ti not in used_t:
            used_d[di] = ti
            used_t.add(ti)
    return used_d


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    truth = json.load(open(sys.argv[1]))["transitions"]
    det = json.load(open(sys.argv[2]))
    t_cuts = [(t["frame"], t["frame"]) for t in truth if t["type"] == "cut"]
    t_grad = [(t["start"], t["end"]) for t in truth if t["type"] != "cut"]
    d_cuts = [(f, f) for f in det.get("cuts", [])]
    d_grad = [tuple(s) for s in det.get("gradual", [])]

    m = match(d_cuts, t_cuts)
    in_gradual = sum(1 for i, d in enumerate(d_cuts)
                     if i not in m and any(gap(d, g) <= TOL for g in t_grad))
    cuts = prf(len(m), len(d_cuts) - len(m) - in_gradual, len(t_cuts) - len(m))
    cuts["in_gradual"] = in_gradual

    m = match(d_grad, t_grad)
    gradual = prf(len(m), len(d_grad) - len(m), len(t_grad) - len(m))

    dets, truths = d_cuts + d_grad, t_cuts + t_grad
    m = match(dets, truths)
    every = prf(len(m), len(dets) - len(m), len(truths) - len(m))

    for name, s in (("cuts", cuts), ("gradual", gradual), ("all", every)):
        extra = f"; {s['in_gradual']} detected cuts inside gradual transitions set aside" if "in_gradual" in s else ""
        print(f"{name:8} P={s['p']:.3f} R={s['r']:.3f} F1={s['f1']:.3f} (tp {s['tp']}, fp {s['fp']}, fn {s['fn']}{extra})")
    print(json.dumps({"cuts": cuts, "gradual": gradual, "all": every}))


if __name__ == "__main__":
    main()
