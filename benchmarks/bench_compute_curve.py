"""Sample quality against training compute for the two model families: VAR and SAR-TS retrained at multiples of the
default step count on a finished main-job run's frozen tokenizers, scored like the main job's rows.

    OMP_NUM_THREADS=1 python benchmarks/bench_compute_curve.py --run runs/demo --scales 0.5,2 --out runs/curve

For each scale s it trains VAR (s x 600 steps x 32) and the SAR-TS FMT (s x 800 steps x 64) with their default models,
seed 0, on the run's multi-scale tokenizer and VQ-VAE, then draws 1,000 class-conditional samples (100 per class,
seed 0, the samplers' default guidance; SAR-TS with 8 sets) and scores them with the run's classifier against the test
split, as the main job does. One JSON line per model and scale goes to `--out`/curve.jsonl; the 1x points are the
run's own rows (its metrics.json). Training compute is given as images seen and as 6 x parameters x tokens per image
x images (the usual transformer estimate of training FLOPs, tokenizer excluded).
"""
import argparse
import json
import time
from pathlib import Path

import torch

from sar_ref.evaluation import real_features
from sar_ref.fmt import train_fmt
from sar_ref.study import class_major_labels, measure
from sar_ref.training import load_model
from sar_ref.var import train_var


def tokens_per_image(model) -> int:
    "Tokens the generator predicts per image: VAR's scales, or the FMT's grid."
    return sum(p * p for p in model.cfg.patch_nums) if model.kind == 'var' else model.cfg.h * model.cfg.w


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--run', required=True, help='a finished sar_ref_demo run folder (default budget)')
    p.add_argument('--scales', default='0.5,2', help='multiples of the default step counts')
    p.add_argument('--out', default='runs/curve')
    a = p.parse_args()
    run, out = Path(a.run), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    clf = load_model(run / 'classifier.pt', kind='classifier')
    real = real_features(classifier=clf)
    labels = class_major_labels(100)
    msvq, vqvae = load_model(run / 'msvq.pt', kind='msvq'), load_model(run / 'vqvae.pt', kind='vqvae')
    for scale in (float(s) for s in a.scales.split(',')):
        for method in ('VAR', 'SAR-TS'):
            steps, batch = (round(600 * scale), 32) if method == 'VAR' else (round(800 * scale), 64)
            ckpt = out / f"{method.lower().replace('-', '_')}_x{scale:g}.pt"
            t0 = time.perf_counter()
            if method == 'VAR':
                model, _ = train_var(msvq, steps=steps, batch_size=batch, seed=0, ckpt_path=ckpt, progress=False)
            else:
                model, _ = train_fmt('SAR-TS', steps=steps, batch_size=batch, seed=0, ckpt_path=ckpt, tokenizer=vqvae, progress=False)
            seconds = time.perf_counter() - t0
            metrics, _ = measure(model, labels, clf, real, intervals=None if method == 'VAR' else 'cosine:8', progress=False)
            images = steps * batch
            row = dict(method=method, scale=scale, steps=steps, batch_size=batch, images_seen=images, train_s=round(seconds, 1),
                       flops=6 * model.n_params() * tokens_per_image(model) * images, threads=torch.get_num_threads(),
                       **{k: metrics[k] for k in ('parameters', 'fd', 'accuracy', 'precision', 'recall')})
            print(json.dumps(row), flush=True)
            with open(out / 'curve.jsonl', 'a') as f: f.write(json.dumps(row) + '\n')


if __name__ == '__main__':
    main()
