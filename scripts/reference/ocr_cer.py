#!/usr/bin/env python3
"""Character error rate of OCR predictions against an ocr_eval_set.py truth.tsv.

    python3 scripts/reference/ocr_cer.py TRUTH.tsv PRED.tsv [--json OUT.json] [--show-errors]

Standard library only.

PRED.tsv: a header line, then `file<TAB>text` rows (further columns are ignored). `file` is the
same relative path as in truth.tsv. `text` is what the engine read from the whole image, its
lines joined by the two characters backslash + 'n' (a literal backslash written as two
backslashes), i.e. the same escaping as truth.tsv. An image missing from PRED counts as read
as "" (CER 1.0 for that image). Suggested line order for engines that return boxes: sort boxes
top-to-bottom, then left-to-right within a line, and join with newline; the normalisation below
makes the joiner irrelevant (newline == space), but the order still matters.

Normalisation, applied to truth and prediction alike before comparing:
  1. Unicode NFKC (fullwidth ，：；？！（） and digits become ASCII; ligatures are split).
     The ideographic full stop 。 (U+3002) is not changed by NFKC and stays as it is.
  2. Typographic variants folded: ‘ ’ ‚ ‛ ′ -> '   “ ” „ ‟ ″ « » -> "   ‐ ‑ ‒ – — − -> -
  3. Every run of whitespace (spaces, tabs, newlines) -> one space; leading/trailing removed.
  4. A space next to a CJK character (Han, kana, CJK punctuation) is removed, since Chinese
     and Japanese do not separate words (Tesseract's chi_sim puts spaces between characters).

CER = sum over images of Levenshtein(truth, pred) / sum of len(truth), counted in Unicode code
points after normalisation (a micro average; insertions, deletions and substitutions each 1).
Reported per language x variant, per variant, per language and overall.
"""
import argparse
import json
import re
import sys
import unicodedata
from collections import defaultdict

FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
})
CJK = "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
SPACE_NEAR_CJK = re.compile(f"(?<=[{CJK}]) | (?=[{CJK}])")


def unescape(field):
    """Inverse of the TSV text escaping: backslash+n -> newline, two backslashes -> one."""
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            nxt = field[i + 1]
            out.append("\n" if nxt == "n" else "\t" if nxt == "t" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def escape(text):
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def normalize(text):
    text = unicodedata.normalize("NFKC", text).translate(FOLD)
    text = " ".join(text.split())
    return SPACE_NEAR_CJK.sub("", text)


def levenshtein(a, b):
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def read_tsv(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        if line.strip() == "":
            continue
        cols = line.split("\t")
        cols += [""] * (len(header) - len(cols))
        rows.append(dict(zip(header, cols)))
    return rows


def score(truth_rows, preds):
    """truth_rows: dicts with file, language, variant, text (escaped); preds: file -> raw text."""
    per_image = []
    for row in truth_rows:
        t = normalize(unescape(row["text"]))
        p = normalize(preds.get(row["file"], ""))
        per_image.append({"file": row["file"], "language": row["language"], "variant": row["variant"],
                          "edits": levenshtein(t, p), "chars": len(t), "truth": t, "pred": p})
    groups = defaultdict(lambda: [0, 0, 0])
    for r in per_image:
        for key in [(r["language"], r["variant"]), ("*", r["variant"]), (r["language"], "*"), ("*", "*")]:
            g = groups[key]
            g[0] += r["edits"]
            g[1] += r["chars"]
            g[2] += 1
    table = {f"{l}/{v}": {"cer": e / max(c, 1), "edits": e, "chars": c, "images": n}
             for (l, v), (e, c, n) in groups.items()}
    return table, per_image


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("truth")
    ap.add_argument("pred")
    ap.add_argument("--json", help="write the table and per-image results here")
    ap.add_argument("--show-errors", action="store_true", help="print truth/pred of images with errors")
    args = ap.parse_args()
    truth_rows = read_tsv(args.truth)
    pred_rows = read_tsv(args.pred)
    preds = {r["file"]: unescape(r.get("text", "")) for r in pred_rows}
    unknown = set(preds) - {r["file"] for r in truth_rows}
    if unknown:
        print(f"warning: {len(unknown)} predicted files not in truth, e.g. {sorted(unknown)[0]}", file=sys.stderr)
    table, per_image = score(truth_rows, preds)

    langs = sorted({r["language"] for r in truth_rows}) + ["*"]
    variants = sorted({r["variant"] for r in truth_rows}, reverse=True) + ["*"]
    print("CER (%)  " + "".join(f"{v:>14}" for v in variants))
    for l in langs:
        cells = []
        for v in variants:
            g = table.get(f"{l}/{v}")
            cells.append(f"{100 * g['cer']:>14.2f}" if g else f"{'-':>14}")
        print(f"{l:<9}" + "".join(cells))
    if args.show_errors:
        for r in per_image:
            if r["edits"]:
                print(f"\n{r['file']}  edits={r['edits']}/{r['chars']}\n  T: {r['truth']}\n  P: {r['pred']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"table": table, "images": per_image}, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
