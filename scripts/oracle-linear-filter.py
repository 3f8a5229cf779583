"""How much one linear filter per image could deblur a folder of pairs: an oracle reference.

For each pair (DIR/input/X, DIR/target/X) the K x K filter (shared by the colour channels, plus an
offset) that maps the blurry image closest to its own sharp frame in least squares is fitted and
applied; the result is clamped and rounded to 8 bits and scored by PSNR over the whole image,
next to the input's. It knows the answer, so it is not a method, but it says how much a
spatially uniform, linear deconvolution can give on that data (docs/training-log.md).

Needs PyTorch (Debian: python3-torch, run with /usr/bin/python3), as scripts/torch_reference.py.
Usage: python3 scripts/oracle-linear-filter.py DIR [--k 15] [--every N]
"""
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def load(path):
    rgb = np.asarray(Image.open(path).convert('RGB'), dtype=np.float64) / 255
    return torch.from_numpy(rgb).permute(2, 0, 1)


def psnr(a, b):
    return -10 * np.log10(((a - b) ** 2).mean().item())


def patches(xp, k, r0, r1, w):
    """The K x K neighbourhoods of output rows r0..r1 of every channel: (C * rows * W, K*K + 1), with a 1 for the offset."""
    cols = F.unfold(xp[:, None, r0:r1 + k - 1, :], k)  # C, K*K, rows*W
    c = cols.shape[0]
    a = cols.permute(0, 2, 1).reshape(-1, k * k)
    return torch.cat([a, torch.ones(c * (r1 - r0) * w, 1, dtype=xp.dtype)], 1)


def oracle(x, y, k, rows=16):
    """The least-squares K x K filter (and offset) from x to y, applied to x, 8-bit.

    The normal equations are summed over bands of `rows` image rows, so memory stays at a band's
    neighbourhoods (K*K+1 unknowns against C*H*W equations; lstsq on the tall matrix is far slower,
    and the whole matrix at K = 31 would be 7 GB).
    """
    r = k // 2
    c, h, w = x.shape
    xp = F.pad(x[None], (r, r, r, r), mode='reflect')[0]
    n = k * k + 1
    ata = torch.zeros(n, n, dtype=x.dtype)
    atb = torch.zeros(n, 1, dtype=x.dtype)
    bands = [(r0, min(h, r0 + rows)) for r0 in range(0, h, rows)]
    for r0, r1 in bands:
        a = patches(xp, k, r0, r1, w)
        ata += a.T @ a
        atb += a.T @ y[:, r0:r1, :].reshape(-1, 1)
    sol = torch.linalg.solve(ata + 1e-9 * torch.eye(n, dtype=x.dtype), atb)
    out = torch.cat([(patches(xp, k, r0, r1, w) @ sol).reshape(c, r1 - r0, w) for r0, r1 in bands], 1)
    return (out.clamp(0, 1) * 255).round() / 255


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('dir')
    p.add_argument('--k', type=int, default=15, help='filter side (odd)')
    p.add_argument('--every', type=int, default=1, help='score every N-th pair (sorted by name)')
    args = p.parse_args()
    if args.k < 1 or args.k % 2 == 0:
        raise SystemExit(f'oracle-linear-filter: --k must be odd and positive, got {args.k}')
    for sub in ('input', 'target'):
        if not os.path.isdir(os.path.join(args.dir, sub)):
            raise SystemExit(f'oracle-linear-filter: {args.dir}: no {sub}/ folder (GoPro layout expected)')
    if args.every < 1:
        raise SystemExit(f'oracle-linear-filter: --every must be at least 1, got {args.every}')
    names = sorted(os.listdir(os.path.join(args.dir, 'input')))[:: args.every]
    if not names:
        raise SystemExit(f'oracle-linear-filter: {args.dir}/input: no images')
    scores = []
    for name in names:
        x = load(os.path.join(args.dir, 'input', name))
        y = load(os.path.join(args.dir, 'target', name))
        scores.append((psnr(x, y), psnr(oracle(x, y, args.k), y)))
        print(f'{name}: input {scores[-1][0]:.2f} dB, oracle {scores[-1][1]:.2f} dB', flush=True)
    s = np.array(scores)
    print(f'{len(names)} pairs, {args.k} x {args.k} filter: input {s[:, 0].mean():.2f} dB, '
          f'oracle {s[:, 1].mean():.2f} dB, gain {(s[:, 1] - s[:, 0]).mean():+.2f} dB')


if __name__ == '__main__':
    main()
