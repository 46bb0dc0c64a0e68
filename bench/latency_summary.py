#!/usr/bin/python3
"""Summary of bench/latency_compare.sh's results.jsonl: the side-by-side tables and issue 19's
"Done when" checks, each with the figures it rests on.

Usage: /usr/bin/python3 bench/latency_summary.py RESULTS.jsonl
"""
import json
import sys


def read_results(path):
    text, rows, pos = open(path).read(), [], 0
    decoder = json.JSONDecoder()
    while True:  # one record after another, each spread over several lines
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        row, pos = decoder.raw_decode(text, pos)
        rows.append(row)
    by = {}
    churn = {}
    for r in rows:
        if r["load"] == "churn":
            churn.setdefault(r["what"], []).append(r["result"]["median_ms"])
        else:
            by[(r["load"], r["model"], r["what"])] = r["result"]
    return by, churn


def ms(by, load, model, what):
    r = by.get((load, model, what))
    if r is None:
        return None
    if what == "pytorch":
        return r[0]["torch_fp32_median_ms"]
    if what == "torchscript":
        return r[0]["torchscript_fp32_median_ms"]
    return r["median_ms"]


get = ms


def fmt(x):
    return "-" if x is None else f"{x:.1f} ms"


def main():
    by, churn = read_results(sys.argv[1])
    for k in [k for k in by if k[2] == "pytorch"]:
        by[(k[0], k[1], "torchscript")] = by[k]
    what = ["pytorch", "torchscript", "opencv_dnn", "ganlite_fp32", "ganlite_bf16"]
    names = ["PyTorch eager", "TorchScript frozen+opt", "OpenCV DNN (ONNX)", "ganlite fp32", "ganlite bf16"]
    q = by.get(("quiet", "teacher", "ganlite_fp32"), {})
    peak32, peak16 = q.get("peak_fp32_gflops"), q.get("peak_bf16_gflops")
    print(f"CPU {q.get('cpu_model')}, {q.get('threads')} thread(s), OpenMP waiting: {q.get('openmp_spin')}")
    print("conv peak measured: fp32 %s GFLOP/s, bf16 %s GFLOP/s" % tuple("-" if p is None else "%.0f" % p for p in (peak32, peak16)))
    for load in ("quiet", "busy"):
        avg = by.get((load, "machine", "loadavg"), {}).get("loadavg", "?")
        print(f"\n{load} ({'one `yes` process' if load == 'busy' else 'nothing else started'}; load average "
              f"{avg} when it began), batch 1, 256x256")
        print("| | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for model in ("teacher", "student"):
            cells = []
            for w in what:
                t = get(by, load, model, w)
                r = by.get((load, model, w), {})
                extra = ""
                if t is not None and isinstance(r, dict) and "macs" in r:
                    gf = 2 * r["macs"] / (t * 1e6)
                    peak = peak16 if w == "ganlite_bf16" else peak32
                    extra = f" ({gf:.0f} GFLOP/s, {gf / peak:.2f} of peak)" if peak else f" ({gf:.0f} GFLOP/s)"
                cells.append(fmt(t) + extra)
            print(f"| {model} | " + " | ".join(cells) + " |")
    checks = []
    t = by.get(("quiet", "teacher", "ganlite_fp32"))
    s = by.get(("quiet", "student", "ganlite_fp32"))
    if t and s:
        mac_ratio = t["macs"] / s["macs"]
        for prec in ("fp32", "bf16"):
            tt, ss = get(by, "quiet", "teacher", f"ganlite_{prec}"), get(by, "quiet", "student", f"ganlite_{prec}")
            if tt and ss:
                print(f"teacher-to-student {prec}: {tt / ss:.2f}x for {mac_ratio:.1f}x fewer MACs "
                      f"({tt / ss / mac_ratio:.2f} of the MAC ratio)")
        sp = t["median_ms"] / s["median_ms"]
        checks.append(("fp32 speed-up >= 0.85 x MAC ratio", sp / mac_ratio >= 0.85, f"{sp / mac_ratio:.2f}"))
        f32 = s.get("fraction_of_peak")
        checks.append(("student fp32 >= 75% of fp32 peak", f32 is not None and f32 >= 0.75, f"{f32:.2f}" if f32 else "-"))
        b = by.get(("quiet", "student", "ganlite_bf16"))
        f16 = b.get("fraction_of_peak") if b else None
        checks.append(("student bf16 >= 60% of bf16 peak", f16 is not None and f16 >= 0.60, f"{f16:.2f}" if f16 else "-"))
        rivals = [x for x in (get(by, "quiet", "student", "torchscript"), get(by, "quiet", "student", "opencv_dnn")) if x]
        if rivals:
            r = min(rivals) / s["median_ms"]
            checks.append(("fp32 student >= 2.5x faster than best of TorchScript / OpenCV", r >= 2.5, f"{r:.2f}x"))
    p = by.get(("quiet", "student_latency", "prune"))
    pb = by.get(("quiet", "student_latency", "ganlite_fp32"))
    if p and pb:
        lat = p["latency"]
        frac = pb["median_ms"] / lat["target_ms"]
        print(f"\nprune --target-latency {lat['target_ms']:.2f} ms: predicted {lat['predicted_ms']:.2f} ms, measured by prune "
              f"{lat['measured_ms']:.2f} ms, by a separate bench {pb['median_ms']:.2f} ms ({frac:.2f} of the budget); "
              f"{nice(p['macs_after'])} MACs, {len(lat['rounds'])} student(s) timed, {lat['shapes_timed']} conv shapes timed")
        checks.append(("prune --target-latency lands in 90-105% of the budget", 0.90 <= frac <= 1.05, f"{frac:.2f}"))
    sq = get(by, "quiet", "student", "ganlite_fp32")
    sb = get(by, "busy", "student", "ganlite_fp32")
    ob = get(by, "busy", "student", "opencv_dnn")
    if sq and sb:
        checks.append(("one busy process: student <= 2.2x quiet", sb / sq <= 2.2, f"{sb / sq:.2f}x"))
        if ob:
            checks.append(("one busy process: >= 1.5x faster than OpenCV DNN", ob / sb >= 1.5, f"{ob / sb:.2f}x"))
    if sq and churn.get("ganlite_fp32"):
        g = churn["ganlite_fp32"]
        print(f"\nshort-lived OpenBLAS jobs, student fp32, per run: ganlite {', '.join(f'{x:.1f}' for x in g)} ms; "
              f"OpenCV DNN {', '.join(f'{x:.1f}' for x in churn.get('opencv_dnn', []))} ms")
        checks.append(("churn: no run > 3x quiet", max(g) / sq <= 3, f"worst {max(g) / sq:.2f}x"))
        o = churn.get("opencv_dnn")
        if o:
            r = (sorted(o)[len(o) // 2]) / (sorted(g)[len(g) // 2])
            checks.append(("churn: >= 1.5x faster than OpenCV DNN (medians of runs)", r >= 1.5, f"{r:.2f}x"))
    print("\nDone when:")
    for name, ok, value in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {name}: {value}")


def nice(macs):
    return f"{macs / 1e9:.2f}G"


if __name__ == "__main__":
    main()
