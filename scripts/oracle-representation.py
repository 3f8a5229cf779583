"""The eight-pair test in plain PyTorch, with an oracle degradation representation.

Trains the deblurring trunk (msdi2_net wf 8, scripts/torch_reference.py) from scratch on a few
pairs made by `msdi synth --motion` and scores it on centre 256 crops of the same pairs (8-bit
PSNR, as msdi's validation), with the recipe of msdi's cpu-stage2 preset: crop 128, batch 4,
flips and 90-degree turns, Adam (0.9, 0.99), lr 2e-3 on a cosine to 1e-7, PSNRLoss on both
stages. The arm says what the trunk is told about the blur:

  ablation    nothing (--ablate no-degradation); also the check of msdi's own trainer
  zeros       msdi2_net's modulated skips, fed zeros (the control for `oracle`)
  oracle      the same, fed the true blur field (motion/NAME.f32) through a 1x1 convolution per
              scale where the real network has its latent decoder: the best representation a
              stage 1 could learn
  fusezeros   no modulation; zeros joined to the input of both stages (the control for:)
  fuseoracle  no modulation; the true blur field joined to the input of both stages

Every arm builds the whole network first, so the layers they share start the same. The field's
offsets turn with the crops' flips and turns (checked at start: warped by its field, the sharp
frame must explain the blurry image). Prints one JSON line per validation (every 200 steps).

Usage (Debian's interpreter, /usr/bin/python3, which has python3-torch):
  oracle-representation.py DIR --arm oracle [--iters 600] [--lr 2e-3] [--threads 2]
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as R  # noqa: E402

ARMS = ['ablation', 'zeros', 'oracle', 'fusezeros', 'fuseoracle']
WF, CROP, BATCH, VAL_SIDE = 8, 128, 4, 256
OFFSET_UNIT, RADIUS_UNIT = 8.0, 2.0  # the field's offsets and defocus radius, scaled to about 1


def load_image(path):
    rgb = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32) / 255
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def load_field(path, height, width):
    """motion/NAME.f32: 9 x H x W float32 (dx, dy at 4 instants, then the defocus radius)."""
    m = torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(9, height, width).copy())
    m[:8] /= OFFSET_UNIT
    m[8] /= RADIUS_UNIT
    return m


def augment(x, y, m, hflip, vflip, turns):
    """Flips and quarter turns of a crop, with the field's offsets (dx, dy) turned to match."""
    m = m.clone()
    if hflip:
        x, y, m = x.flip(2), y.flip(2), m.flip(2)
        m[0:8:2] *= -1
    if vflip:
        x, y, m = x.flip(1), y.flip(1), m.flip(1)
        m[1:8:2] *= -1
    for _ in range(turns):
        x, y, m = (torch.rot90(t, 1, (1, 2)) for t in (x, y, m))
        dx, dy = m[0:8:2].clone(), m[1:8:2].clone()
        m[0:8:2], m[1:8:2] = dy, -dx
    return x, y, m


def check_field(x, y, m):
    """Warped by the field at its four instants, the sharp frame must explain the blurry image
    better than the sharp frame itself, in every orientation (else the turns are wrong)."""
    def linear(t):
        return torch.where(t <= 0.04045, t / 12.92, ((t + 0.055) / 1.055) ** 2.4)

    for turn in [(0, 0, 0), (1, 0, 1), (0, 1, 3), (1, 1, 2)]:
        xa, ya, ma = augment(x, y, m, *turn)
        side = xa.shape[1]
        gy, gx = torch.meshgrid(torch.arange(side + 0.), torch.arange(side + 0.), indexing='ij')
        rebl = 0
        for j in range(4):
            sx = (gx + OFFSET_UNIT * ma[2 * j]) / (side - 1) * 2 - 1
            sy = (gy + OFFSET_UNIT * ma[2 * j + 1]) / (side - 1) * 2 - 1
            rebl = rebl + F.grid_sample(linear(ya)[None], torch.stack([sx, sy], -1)[None], align_corners=True)[0]
        inner = (slice(None), slice(40, -40), slice(40, -40))
        err = ((rebl / 4 - linear(xa))[inner] ** 2).mean().item()
        err_sharp = ((linear(ya) - linear(xa))[inner] ** 2).mean().item()
        if not err < 0.5 * err_sharp:
            raise SystemExit(f'oracle-representation: the field does not explain the blur after {turn}: {err} vs {err_sharp}')


def build(arm):
    net = R.MsdiNet(wf=WF, version=2)
    del net.net_prior, net.prior_upsampling  # the field, or nothing, stands in for the representation
    if arm in ('zeros', 'oracle'):
        net.proj = nn.ModuleList([nn.Conv2d(9, WF * 2 ** i, 1) for i in range(4)])
    else:
        net.ad1_list = None
    if arm.startswith('fuse'):
        net.conv_01 = nn.Conv2d(3 + 9, WF, 3, padding=1)
        net.conv_02 = nn.Conv2d(3 + 9, WF, 3, padding=1)
    return net


def run(net, arm, x, m):
    told = m if arm.endswith('oracle') else torch.zeros_like(m)
    if arm in ('zeros', 'oracle'):
        return net(x, latents=[p(told) for p in net.proj])
    return net(x, extra=told if arm.startswith('fuse') else None)


def psnr8(out, target):
    q = lambda t: (t.clamp(0, 1) * 255).round()
    return 10 * math.log10(255 ** 2 / ((q(out) - q(target)) ** 2).mean().item())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dir')
    ap.add_argument('--arm', choices=ARMS, required=True)
    ap.add_argument('--iters', type=int, default=600)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    R.NHIDDEN = 32  # SPADE hidden width of the bundled networks
    d = args.dir
    if not os.path.isdir(os.path.join(d, 'motion')):
        raise SystemExit(f'oracle-representation: {d}: no motion/ folder (make the pairs with msdi synth --motion)')
    names = sorted(os.listdir(os.path.join(d, 'input')))
    X = [load_image(os.path.join(d, 'input', n)) for n in names]
    Y = [load_image(os.path.join(d, 'target', n)) for n in names]
    M = [load_field(os.path.join(d, 'motion', os.path.splitext(n)[0] + '.f32'), *x.shape[1:]) for n, x in zip(names, X)]
    check_field(X[0], Y[0], M[0])

    torch.manual_seed(0)
    random.seed(0)
    net = build(args.arm).train()
    params = [p for p in net.parameters() if p.requires_grad]
    print(args.arm, 'params', sum(p.numel() for p in params), flush=True)
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.99), eps=1e-8)

    def sample():
        xs, ys, ms = [], [], []
        for _ in range(BATCH):
            k = random.randrange(len(X))
            h, w = X[k].shape[1:]
            i, j = random.randrange(h - CROP + 1), random.randrange(w - CROP + 1)
            c = (slice(None), slice(i, i + CROP), slice(j, j + CROP))
            x, y, m = augment(X[k][c], Y[k][c], M[k][c], random.random() < 0.5, random.random() < 0.5, random.randrange(4))
            xs.append(x)
            ys.append(y)
            ms.append(m)
        return torch.stack(xs), torch.stack(ys), torch.stack(ms)

    def validate():
        net.eval()
        scores = []
        with torch.no_grad():
            for x, y, m in zip(X, Y, M):
                h, w = x.shape[1:]
                i, j = (h - VAL_SIDE) // 2, (w - VAL_SIDE) // 2
                c = (None, slice(None), slice(i, i + VAL_SIDE), slice(j, j + VAL_SIDE))
                scores.append(psnr8(run(net, args.arm, x[c], m[c])[1], y[c]))
        net.train()
        return sum(scores) / len(scores)

    t0 = time.time()
    for t in range(args.iters):
        for g in opt.param_groups:
            g['lr'] = 1e-7 + (args.lr - 1e-7) * (1 + math.cos(math.pi * t / args.iters)) / 2
        x, y, m = sample()
        out_1, out_2 = run(net, args.arm, x, m)
        loss = R.psnr_loss(out_1, y) + R.psnr_loss(out_2, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (t + 1) % 200 == 0:
            print(json.dumps({'arm': args.arm, 'step': t + 1, 'psnr': round(validate(), 3), 's': round(time.time() - t0)}), flush=True)


if __name__ == '__main__':
    main()
