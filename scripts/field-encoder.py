"""Can the degradation encoder describe the blur at all, when told what to describe?

Trains msdi2_net's encoder and latent decoder (wf 8, scripts/torch_reference.py), with a 1x1
head on each latent map, to predict the true blur of synthetic pairs (`msdi synth --motion`)
from the blurry image alone: the blur's length log(1 + pixels from the start to the end of the
exposure), its orientation (length x cos 2 angle, length x sin 2 angle, in units of 8 pixels)
and the defocus radius (units of 2 pixels), at every cell of every scale. Supervised, so it is
an upper bound for what the architecture can say, not for what stage 1's reblurring teaches it;
scored as R^2 on centre 256 crops of held-out pairs, overall and within the image (each image's
mean taken from prediction and truth alike), as scripts/probe-latent-field.mts scores a learnt
representation. The arm says which instance normalisations the encoder keeps:

  official   all of them (every layer normalises each channel per image, z included)
  none       none
  simple     not the encoder: a plain CNN as a control for how hard the task is (five stride-2
             3x3 convolutions with batch normalisation and ReLU to 8 x 8, a 1x1 head there and
             at every finer scale the coarse prediction upsampled)

Usage (Debian's interpreter, /usr/bin/python3, which has python3-torch):
  field-encoder.py TRAIN_DIR VAL_DIR --arm official [--iters 1000] [--batch 8] [--lr 1e-3]
"""
import argparse
import importlib
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as R  # noqa: E402
O = importlib.import_module('oracle-representation')  # its loaders and the field's flips and turns

ARMS = ['official', 'none', 'simple']
WF, SIDE = 8, 256
FACTS = ['length', 'orient cos', 'orient sin', 'defocus']


def facts(m):
    """The four blur facts (C=4 x H x W) of a field in load_field's units."""
    u = (m[6] - m[0]) * O.OFFSET_UNIT
    v = (m[7] - m[1]) * O.OFFSET_UNIT
    length = torch.sqrt(u * u + v * v)
    safe = length.clamp_min(1e-6)
    return torch.stack([torch.log1p(length), (u * u - v * v) / safe / O.OFFSET_UNIT, 2 * u * v / safe / O.OFFSET_UNIT, m[8]])


def drop_norms(module):
    for name, child in module.named_children():
        if isinstance(child, nn.InstanceNorm2d):
            setattr(module, name, nn.Identity())
        else:
            drop_norms(child)


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        layers, prev = [], 3
        for w in (16, 32, 64, 128, 128):
            layers += [nn.Conv2d(prev, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU()]
            prev = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(prev, len(FACTS), 1)

    def forward(self, x):
        coarse = self.head(self.body(x))
        return [F.interpolate(coarse, size=(SIDE // f, SIDE // f), mode='bilinear', align_corners=False) for f in (1, 2, 4, 8)]


class FieldEncoder(nn.Module):
    def __init__(self, arm):
        super().__init__()
        self.encoder = R.ConvEncoder(WF, 2)
        self.decoder = R.LatentDecoder(WF, 2)
        if arm == 'none':
            drop_norms(self.encoder)
        self.heads = nn.ModuleList([nn.Conv2d(WF * 2 ** i, len(FACTS), 1) for i in range(4)])

    def forward(self, x):
        return [h(l) for h, l in zip(self.heads, self.decoder(self.encoder(x)))]


def build(arm):
    return SimpleCNN() if arm == 'simple' else FieldEncoder(arm)


def field_loss(preds, target):
    loss = 0
    for p in preds:
        t = F.adaptive_avg_pool2d(target, p.shape[-2:])
        loss = loss + F.mse_loss(p, t)
    return loss / len(preds)


def load_pairs(d):
    if not os.path.isdir(os.path.join(d, 'motion')):
        raise SystemExit(f'field-encoder: {d}: no motion/ folder (make the pairs with msdi synth --motion)')
    # the pairs whose field is written (a folder still being made has fewer fields than images)
    fields = {os.path.splitext(n)[0] for n in os.listdir(os.path.join(d, 'motion'))}
    names = [n for n in sorted(os.listdir(os.path.join(d, 'input'))) if os.path.splitext(n)[0] in fields]
    X = [O.load_image(os.path.join(d, 'input', n)) for n in names]
    M = [O.load_field(os.path.join(d, 'motion', os.path.splitext(n)[0] + '.f32'), *x.shape[1:]) for n, x in zip(names, X)]
    return X, M


def r2(preds, truths):
    """R^2 per fact over all cells, overall and within each image (lists of 4 x H x W)."""
    P, T = torch.stack(preds).double(), torch.stack(truths).double()
    overall = 1 - ((T - P) ** 2).sum((0, 2, 3)) / ((T - T.mean((0, 2, 3), keepdim=True)) ** 2).sum((0, 2, 3))
    Pc, Tc = P - P.mean((2, 3), keepdim=True), T - T.mean((2, 3), keepdim=True)
    within = 1 - ((Tc - Pc) ** 2).sum((0, 2, 3)) / (Tc ** 2).sum((0, 2, 3))
    return overall.tolist(), within.tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('train')
    ap.add_argument('val')
    ap.add_argument('--arm', choices=ARMS, required=True)
    ap.add_argument('--iters', type=int, default=1000)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--every', type=int, default=250)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X, M = load_pairs(args.train)
    VX, VM = load_pairs(args.val)
    torch.manual_seed(0)
    random.seed(0)
    net = build(args.arm).train()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.99))

    def sample():
        xs, ts = [], []
        for _ in range(args.batch):
            k = random.randrange(len(X))
            h, w = X[k].shape[1:]
            i, j = random.randrange(h - SIDE + 1), random.randrange(w - SIDE + 1)
            c = (slice(None), slice(i, i + SIDE), slice(j, j + SIDE))
            x, _, m = O.augment(X[k][c], X[k][c], M[k][c], random.random() < 0.5, random.random() < 0.5, random.randrange(4))
            xs.append(x)
            ts.append(facts(m))
        return torch.stack(xs), torch.stack(ts)

    def validate():
        net.eval()
        preds, truths = [[] for _ in range(4)], [[] for _ in range(4)]
        with torch.no_grad():
            for x, m in zip(VX, VM):
                h, w = x.shape[1:]
                i, j = (h - SIDE) // 2, (w - SIDE) // 2
                c = (slice(None), slice(i, i + SIDE), slice(j, j + SIDE))
                t = facts(m[c])[None]
                for s, p in enumerate(net(x[c][None])):
                    preds[s].append(p[0])
                    truths[s].append(F.adaptive_avg_pool2d(t, p.shape[-2:])[0])
        net.train()
        return [r2(p, t) for p, t in zip(preds, truths)]

    t0 = time.time()
    run, runs = 0, 0
    for t in range(args.iters):
        for g in opt.param_groups:
            g['lr'] = 1e-7 + (args.lr - 1e-7) * (1 + math.cos(math.pi * t / args.iters)) / 2
        x, target = sample()
        loss = field_loss(net(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run, runs = run + loss.item(), runs + 1
        if (t + 1) % args.every == 0 or t + 1 == args.iters:
            scores = validate()
            # finest and coarsest latent maps: R^2 per fact, overall / within
            fmt = lambda s: {f: f'{o:.2f} / {w:.2f}' for f, o, w in zip(FACTS, *s)}
            print(json.dumps({'arm': args.arm, 'step': t + 1, 'loss': round(run / runs, 4), 's': round(time.time() - t0),
                              'finest': fmt(scores[0]), 'coarsest': fmt(scores[3])}), flush=True)
            run, runs = 0, 0


if __name__ == '__main__':
    main()
