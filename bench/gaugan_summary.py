"""Summarises `ganlite eval --json` reports of GauGAN students (bench/gaugan_labels2scenes.sh):
one row per student run, then the mean of each kind (the run name without its _s<seed>)."""
import json
import re
import statistics
import sys

COLUMNS = [('psnr', 'PSNR', '%.2f'), ('ssim', 'SSIM', '%.4f'), ('psnr_vs_teacher', 'PSNR vs T', '%.2f'),
           ('ssim_vs_teacher', 'SSIM vs T', '%.4f'), ('miou', 'mIoU', '%.1f'), ('latency', 'ms', '%.2f'),
           ('speedup', 'T ms / ms', '%.2f')]


def row(model, report, is_teacher=False):
    """The model's figures; its speed-up is the teacher's latency over its own in the same report
    (both timed in one run, so the ratio holds on a shared machine)."""
    values = {k: model.get(k) for k, _, _ in COLUMNS}
    values['latency'] = model['latency_ms']['median']
    values['speedup'] = None if is_teacher else report['teacher']['latency_ms']['median'] / values['latency']
    values['macs'] = model['macs']
    return values


def main():
    reports = {re.sub(r'^.*eval_|\.json$', '', p.split('/')[-1]): json.load(open(p)) for p in sys.argv[1:]}
    first = next(iter(reports.values()))
    rows = {'teacher': row(first['teacher'], first, is_teacher=True)}
    rows.update({name: row(r['student'], r) for name, r in sorted(reports.items())})
    kinds = {}
    for name, values in rows.items():
        kinds.setdefault(re.sub(r'_s\d+$', '', name), []).append(values)
    print('| model | MACs | ' + ' | '.join(title for _, title, _ in COLUMNS) + ' |')
    print('|---' * (len(COLUMNS) + 2) + '|')
    for name, values in list(rows.items()) + [(k + ' (mean)', None) for k, v in kinds.items() if len(v) > 1]:
        if values is None:
            group = kinds[name[:-len(' (mean)')]]
            values = {k: statistics.mean(v[k] for v in group if v[k] is not None) if group[0][k] is not None else None
                      for k in list(group[0])}
        cells = ['-' if values[k] is None else fmt % values[k] for k, _, fmt in COLUMNS]
        print(f'| {name} | {values["macs"] / 1e6:.1f}M | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
