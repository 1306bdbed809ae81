"""Plot (and print) sample quality against training compute from `bench_compute_curve.py`'s points and the run's own rows.

    python benchmarks/plot_compute_curve.py --run runs/demo --curve runs/curve/curve.jsonl --out nbs/images/compute_curve.png

The 1x points are the run's VAR (6 scales) and SAR-TS (8 steps) rows with the default step counts; FD is shown as a
multiple of the run's real-data floor, with the tokenizers' ceilings as dashed lines.
"""
import argparse
import json
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter

DEFAULT = {'VAR': (600, 32, 130), 'SAR-TS': (800, 64, 64)}    # steps, batch, tokens per image of the default recipe
CEILING = {'VAR': 'multi-scale reconstructions (ceiling)', 'SAR-TS': 'VQ-VAE reconstructions (ceiling)'}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--run', required=True)
    p.add_argument('--curve', required=True)
    p.add_argument('--out', default='compute_curve.png')
    a = p.parse_args()
    rows = json.loads((Path(a.run) / 'metrics.json').read_text())['rows']
    by = {(r['method'], r.get('steps')): r for r in rows}
    floor = by[('real data (floor)', None)]['fd']
    points = [json.loads(line) for line in Path(a.curve).read_text().splitlines() if line.strip()]
    for method, steps in (('VAR', 6), ('SAR-TS', 8)):
        r, (n, b, t) = by[(method, steps)], DEFAULT[method]
        points.append(dict(method=method, scale=1.0, steps=n, images_seen=n * b, flops=6 * r['parameters'] * t * n * b,
                           fd=r['fd'], accuracy=r['accuracy']))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    print(f"{'method':7s} {'x default':>9s} {'images':>8s} {'TFLOPs':>7s} {'FD':>7s} {'x floor':>7s} {'accuracy':>8s}")
    for method, colour in (('VAR', 'C0'), ('SAR-TS', 'C1')):
        pts = sorted((q for q in points if q['method'] == method), key=lambda q: q['flops'])
        for q in pts:
            print(f"{method:7s} {q['scale']:9g} {q['images_seen']:8d} {q['flops'] / 1e12:7.1f} {q['fd']:7.2f} "
                  f"{q['fd'] / floor:7.1f} {q['accuracy']:8.3f}")
        x = [q['flops'] / 1e12 for q in pts]
        ax1.plot(x, [q['fd'] / floor for q in pts], 'o-', color=colour, label=method)
        ax1.axhline(by[(CEILING[method], None)]['fd'] / floor, color=colour, ls='--', lw=1)
        ax2.plot(x, [100 * q['accuracy'] for q in pts], 'o-', color=colour, label=method)
    ax2.axhline(100 * by[('real data (floor)', None)]['accuracy'], color='k', ls=':', lw=1, label='real images')
    ax1.set_yscale('log')
    for ax in (ax1, ax2):
        ax.set_xscale('log'); ax.set_xlabel('training compute (TFLOPs, 6 x params x tokens)')
        ax.set_xticks([5, 10, 20, 40, 80, 160]); ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax1.set_yticks([1, 2, 5, 10, 20, 40]); ax1.yaxis.set_major_formatter(ScalarFormatter()); ax1.yaxis.set_minor_formatter(NullFormatter())
    ax1.set_ylabel('FD / real-data floor'); ax1.legend(title='dashed: tokenizer ceiling', fontsize=8)
    ax2.set_ylabel('classifier accuracy on samples (%)'); ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(f'wrote {a.out}')


if __name__ == '__main__':
    main()
