"""msdi_net (v1) and msdi2_net (v2) in plain PyTorch eager: our own reference and speed baseline.

Written from the facts in ../shared/SPEC.md (not copied from the official code); the module
tree follows the official one so that state_dict keys are the official names. Widths are
parameters: wf is the trunk width, the degradation encoder uses ndf = wf, SPADE hidden = 128.

Usage (run with Debian's interpreter, /usr/bin/python3, which has python3-torch):
  torch_reference.py check [--fixtures DIR]
      eval and training fixtures of the official code (wf = ndf = 4); exits 1 on a mismatch
  torch_reference.py forward --wf 64 --size 256 --threads N --repeats R
      msdi_net inference (eval, inference_mode) on 1x3xSxS; one JSON line, median ms
  torch_reference.py train --wf 16 --batch 4 --size 256 --threads N --repeats R
      one stage-2 step of msdi2_net (PSNRLoss x2, backward, gradient norm, Adam); one JSON line,
      median ms; --device cuda, --amp bf16 and --spade-hidden H as msdi's trainer runs it
Both bench modes accept --warmup W, --profile (per-op table from torch.profiler, on stderr),
--channels-last (NHWC; not the baseline) and --serve (one timed step per "run" line on stdin,
one JSON line {"ms": ..., "cpu_ms": ...} back, for a caller that interleaves its own steps with these).
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

SLOPE = 0.2
NHIDDEN = 128
ENCODER_SIZE = 256


def lrelu(x):
    return F.leaky_relu(x, SLOPE)


# ---------------------------------------------------------------------------- leaf blocks

def sn_conv(cin, cout, k, stride=1, padding=0, bias=True):
    """Spectral-normalised conv: keys weight_orig, weight_u, weight_v (+ bias)."""
    return spectral_norm(nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias))


def sn_instance(cin, cout, stride, padding):
    """'spectralinstance': spectral conv 3x3 without bias (index 0) + InstanceNorm (index 1)."""
    return nn.Sequential(sn_conv(cin, cout, 3, stride, padding, bias=False), nn.InstanceNorm2d(cout))


class EncoderResBlock(nn.Module):
    """reflpad, conv, lrelu, reflpad, conv; out = lrelu(x + y)."""

    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.LeakyReLU(SLOPE),
                                        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))

    def forward(self, x):
        return lrelu(x + self.conv_block(x))


class UpConvBlock(nn.Module):
    """Latent decoder step: reflpad, SN conv a->b, lrelu, nearest x2, reflpad, SN conv b->b, lrelu."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), sn_conv(cin, cout, 3), nn.LeakyReLU(SLOPE),
                                        nn.Upsample(scale_factor=2), nn.ReflectionPad2d(1), sn_conv(cout, cout, 3),
                                        nn.LeakyReLU(SLOPE))

    def forward(self, x):
        return self.conv_block(x)


class RunningStats(nn.Module):
    """SPADE1's param_free_norm: its running statistics are in the weights, it is never applied."""

    def __init__(self, c):
        super().__init__()
        self.register_buffer('running_mean', torch.zeros(c))
        self.register_buffer('running_var', torch.ones(c))


class SPADE1(nn.Module):
    """out = x * (1 + gamma(a)) + beta(a), a = mlp_shared(cat[x, seg resized to x]); no normalisation."""

    def __init__(self, norm_nc, label_nc):
        super().__init__()
        self.param_free_norm = RunningStats(norm_nc)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_nc + norm_nc, label_nc, 1), nn.LeakyReLU(SLOPE),
            nn.Conv2d(label_nc, NHIDDEN, 3, padding=1), nn.LeakyReLU(SLOPE),
            nn.Conv2d(NHIDDEN, NHIDDEN, 3, padding=1), nn.LeakyReLU(SLOPE))
        self.mlp_gamma = nn.Conv2d(NHIDDEN, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(NHIDDEN, norm_nc, 3, padding=1)

    def forward(self, x, seg):
        seg = F.interpolate(seg, size=x.shape[2:], mode='nearest')
        a = self.mlp_shared(torch.cat([x, seg], 1))
        return x * (1 + self.mlp_gamma(a)) + self.mlp_beta(a)


class SPADEResnetBlock1(nn.Module):
    """out = x + conv_0(lrelu(SPADE1(x, seg))), conv_0 spectral."""

    def __init__(self, c):
        super().__init__()
        self.conv_0 = sn_conv(c, c, 3, padding=1)
        self.norm_0 = SPADE1(c, c)

    def forward(self, x, seg):
        return x + self.conv_0(lrelu(self.norm_0(x, seg)))


class UNetConvBlock(nn.Module):
    """HINet block: conv_1 (3x3) -> HIN on half the channels -> lrelu -> conv_3 (1x1) -> lrelu ->
    conv_2 (3x3) -> lrelu -> + identity(x) [+ csff_enc(enc) + csff_dec(dec)] [-> downsample]."""

    def __init__(self, cin, cout, downsample, csff=False, hin=False):
        super().__init__()
        self.identity = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv_1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv_2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_3 = nn.Conv2d(cout, cout, 1, bias=False)
        self.conv_4 = nn.Conv2d(cout, cout, 1, bias=False)  # in the weights, never used
        if downsample and csff:
            self.csff_enc = nn.Conv2d(cout, cout, 1, bias=False)
            self.csff_dec = nn.Conv2d(cout, cout, 1, bias=False)
        self.hin = hin
        if hin:
            self.norm = nn.InstanceNorm2d(cout // 2, affine=True)
        self.has_down = downsample
        if downsample:
            self.downsample = nn.Conv2d(cout, cout, 4, stride=2, padding=1, bias=False)

    def forward(self, x, enc=None, dec=None):
        out = self.conv_1(x)
        if self.hin:
            a, b = torch.chunk(out, 2, dim=1)
            out = torch.cat([self.norm(a), b], 1)
        out = lrelu(out)
        out = lrelu(self.conv_3(out))
        out = lrelu(self.conv_2(out))
        out = out + self.identity(x)
        if enc is not None and dec is not None:
            out = out + self.csff_enc(enc) + self.csff_dec(dec)
        if self.has_down:
            return self.downsample(out), out
        return out


class UNetUpBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv_block = UNetConvBlock(cin, cout, False)

    def forward(self, x, bridge):
        return self.conv_block(torch.cat([self.up(x), bridge], 1))


class SAM(nn.Module):
    """Supervised attention between the stages: returns (features, stage-1 image)."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, 3, 3, padding=1)
        self.conv3 = nn.Conv2d(3, c, 3, padding=1)

    def forward(self, x, image):
        img = self.conv2(x) + image
        return self.conv1(x) * torch.sigmoid(self.conv3(img)) + x, img


# ---------------------------------------------------------------------------- networks

class ConvEncoder(nn.Module):
    """Degradation encoder. v1: z = 4ndf x 4 x 4; v2: z = 32ndf x 8 x 8."""

    def __init__(self, ndf, version):
        super().__init__()
        self.version = version
        widths = [ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf if version == 1 else 16 * ndf]
        prev = 3
        for i, w in enumerate(widths):
            setattr(self, f'layer{i + 1}', sn_instance(prev, w, 2, 1))
            prev = w
        if version == 1:
            self.layer6 = sn_instance(prev, prev, 1, 1)
        self.n_res = 5 if version == 1 else 3
        for i in range(self.n_res):
            setattr(self, f'res_{i}', EncoderResBlock(prev))
        if version == 1:
            self.out = sn_instance(prev, 4 * ndf, 1, 0)
        else:
            layers = []
            for cin in (prev, 2 * prev, 2 * prev):
                layers += [nn.ReflectionPad2d(1), sn_instance(cin, 2 * prev, 1, 0), nn.LeakyReLU(SLOPE)]
            self.out = nn.Sequential(*layers)
        self.down = nn.AvgPool2d(2, 2)
        self.conv_7x7 = nn.Conv2d(ndf, ndf, 7)

    def forward(self, x):
        if x.shape[2] != ENCODER_SIZE or x.shape[3] != ENCODER_SIZE:
            x = F.interpolate(x, size=(ENCODER_SIZE, ENCODER_SIZE), mode='bilinear', align_corners=False)
        x = self.layer1(x)
        x = self.conv_7x7(F.pad(lrelu(x), (3, 3, 3, 3), mode='reflect'))
        for i in range(2, 6):
            x = getattr(self, f'layer{i}')(lrelu(x))
        if self.version == 2:
            for i in range(3):
                x = getattr(self, f'res_{i}')(x)
            return self.out(x)
        x = self.layer6(lrelu(x))
        x = self.res_2(self.res_1(self.res_0(x)))
        x = self.res_4(self.res_3(self.down(x)))
        return self.out(F.pad(x, (1, 1, 1, 1), mode='reflect'))


class LatentDecoder(nn.Module):
    """prior_upsampling: z -> [wf@256, 2wf@128, 4wf@64, 8wf@32]."""

    def __init__(self, wf, version):
        super().__init__()
        self.steps = []
        if version == 1:
            self.conv_latent_init = UpConvBlock(4 * wf, 32 * wf)
            self.steps.append(self.conv_latent_init)
        for k, (a, b) in enumerate(zip((32, 16, 8, 4, 2), (16, 8, 4, 2, 1))):
            m = UpConvBlock(a * wf, b * wf)
            setattr(self, f'conv_latent_up{k + 2}', m)
            self.steps.append(m)

    def forward(self, z):
        outs = []
        for m in self.steps:
            z = m(z)
            outs.append(z)
        return outs[-4:][::-1]


class MsdiNet(nn.Module):
    """Two-stage HINet whose stage-1 skips are modulated by the degradation representation."""

    def __init__(self, wf=64, version=1, ndf=None, depth=5):
        super().__init__()
        self.depth = depth
        width = [wf * 2 ** i for i in range(depth)]
        self.conv_01 = nn.Conv2d(3, wf, 3, padding=1)
        self.conv_02 = nn.Conv2d(3, wf, 3, padding=1)
        self.prior_upsampling = LatentDecoder(wf, version)
        self.net_prior = ConvEncoder(ndf or wf, version)
        for p in list(self.prior_upsampling.parameters()) + list(self.net_prior.parameters()):
            p.requires_grad_(False)
        prev = wf
        self.down_path_1, self.down_path_2 = nn.ModuleList(), nn.ModuleList()
        for i in range(depth):
            down = i + 1 < depth
            self.down_path_1.append(UNetConvBlock(prev, width[i], down, hin=True))
            self.down_path_2.append(UNetConvBlock(prev, width[i], down, csff=down, hin=True))
            prev = width[i]
        self.ad1_list = nn.ModuleList([SPADEResnetBlock1(width[i]) for i in range(depth - 1)])
        self.up_path_1, self.up_path_2 = nn.ModuleList(), nn.ModuleList()
        for k in range(1, 7):
            setattr(self, f'skip_conv_{k}', nn.ModuleList())
        for i in reversed(range(depth - 1)):
            self.up_path_1.append(UNetUpBlock(prev, width[i]))
            self.up_path_2.append(UNetUpBlock(prev, width[i]))
            for k in range(1, 7):
                getattr(self, f'skip_conv_{k}').append(UNetConvBlock(width[i], width[i], False, hin=True))
            prev = width[i]
        self.sam12 = SAM(prev)
        self.cat12 = nn.Conv2d(2 * prev, prev, 1)
        self.last = nn.Conv2d(prev, 3, 3, padding=1)

    def represent(self, x):
        z = self.net_prior(x)
        return z, self.prior_upsampling(z)

    def forward(self, x, latents=None, extra=None):
        """latents: the maps that modulate the skips (default: the input's own representation; none
        when ad1_list is None, the ablation); extra: channels joined to the input of both stages."""
        if latents is None and self.ad1_list is not None:
            _, latents = self.represent(x)
        inp = x if extra is None else torch.cat([x, extra], 1)
        # stage 1
        x1 = self.conv_01(inp)
        encs, decs = [], []
        for i, block in enumerate(self.down_path_1):
            if i + 1 < self.depth:
                x1, full = block(x1)
                encs.append(full)
            else:
                x1 = block(x1)
        for i, up in enumerate(self.up_path_1):
            s = self.skip_conv_1[i](encs[-1 - i])
            if self.ad1_list is not None:
                s = self.ad1_list[-1 - i](s, latents[-1 - i])
            x1 = up(x1, self.skip_conv_3[i](s))
            decs.append(x1)
        sam_feature, out_1 = self.sam12(x1, x)
        # stage 2, with cross-stage feature fusion
        x2 = self.cat12(torch.cat([self.conv_02(inp), sam_feature], 1))
        blocks = []
        for i, block in enumerate(self.down_path_2):
            if i + 1 < self.depth:
                x2, full = block(x2, encs[i], decs[-1 - i])
                blocks.append(full)
            else:
                x2 = block(x2)
        for i, up in enumerate(self.up_path_2):
            s = self.skip_conv_2[i](blocks[-1 - i])
            s = self.skip_conv_6[i](self.skip_conv_5[i](self.skip_conv_4[i](s)))
            x2 = up(x2, s)
        return out_1, self.last(x2) + x


def psnr_loss(pred, target, weight=0.5):
    """BasicSR PSNRLoss: weight * 10/ln10 * mean over the batch of log(mse + 1e-8)."""
    mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    return weight * (10 / math.log(10)) * torch.log(mse + 1e-8).mean()


# ---------------------------------------------------------------------------- fixtures

DTYPES = {'F32': torch.float32, 'F64': torch.float64, 'F16': torch.float16, 'I64': torch.int64}


def read_safetensors(path):
    """8-byte little-endian header length, JSON header, then the raw little-endian bytes."""
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack('<Q', buf[:8])
    header = json.loads(buf[8:8 + n])
    base = 8 + n
    out = {}
    for key, info in header.items():
        if key == '__metadata__':
            continue
        a, b = info['data_offsets']
        t = torch.frombuffer(bytearray(buf[base + a:base + b]), dtype=DTYPES[info['dtype']])
        out[key] = t.reshape(info['shape'])
    return out


def max_abs(a, b):
    return (a.detach().float() - b.float()).abs().max().item()


def rel(a, b):
    return max_abs(a, b) / max(b.abs().max().item(), 1e-12)


def check(fixtures):
    weights = read_safetensors(os.path.join(fixtures, 'msdi_net_w4.weights.safetensors'))
    fx_eval = read_safetensors(os.path.join(fixtures, 'msdi_net_w4.eval.safetensors'))
    fx_train = read_safetensors(os.path.join(fixtures, 'msdi_net_w4.train.safetensors'))
    failures = []

    def fresh():
        net = MsdiNet(wf=4, version=1)
        net.load_state_dict(weights, strict=True)
        return net

    # eval: encoder output, latents, both outputs
    net = fresh().eval()
    with torch.no_grad():
        x = fx_eval['input']
        z, latents = net.represent(x)
        out_1, out_2 = net(x)
    errs = {'prior_z': max_abs(z, fx_eval['prior_z']), 'out_1': max_abs(out_1, fx_eval['out_1']),
            'out_2': max_abs(out_2, fx_eval['out_2'])}
    errs.update({f'latents.{i}': max_abs(l, fx_eval[f'latents.{i}']) for i, l in enumerate(latents)})
    worst_eval = max(errs.items(), key=lambda kv: kv[1])
    failures += [f'eval {k} {v:.2e}' for k, v in errs.items() if not v < 1e-4]

    # training step: train-mode forward (spectral norms power-iterate), loss, gradients, buffers
    net = fresh().train()
    out_1, out_2 = net(fx_train['input'])
    loss = psnr_loss(out_1, fx_train['target']) + psnr_loss(out_2, fx_train['target'])
    loss.backward()
    train_out = max(max_abs(out_1, fx_train['out_1']), max_abs(out_2, fx_train['out_2']))
    loss_err = abs(loss.item() - fx_train['loss'].item())
    if not train_out < 1e-4:
        failures.append(f'train outputs {train_out:.2e}')
    if not loss_err < 1e-3:
        failures.append(f'loss {loss.item()} vs {fx_train["loss"].item()}')
    params = dict(net.named_parameters())
    grad_keys = [k for k in fx_train if k.startswith('grad.')]
    # the fixture has a gradient for every parameter the loss reaches (not the unused conv_4)
    reached = {k for k, p in params.items() if p.grad is not None}
    if {k[5:] for k in grad_keys} != reached:
        failures.append(f'gradient key sets differ: {sorted(reached ^ {k[5:] for k in grad_keys})[:5]}')
    worst_grad = (None, 0.0)
    for key in grad_keys:
        p = params.get(key[5:])
        g = p.grad if p is not None else None
        e = rel(g, fx_train[key]) if g is not None else float('inf')
        worst_grad = max(worst_grad, (key, e), key=lambda kv: kv[1])
        if not e < 1e-3:
            failures.append(f'{key} {e:.2e}')
    buffers = dict(net.named_buffers())
    worst_after = (None, 0.0)
    for key in (k for k in fx_train if k.startswith('after.')):
        e = max_abs(buffers[key[6:]], fx_train[key])
        worst_after = max(worst_after, (key, e), key=lambda kv: kv[1])
        if not e < 1e-4:
            failures.append(f'{key} {e:.2e}')

    # v2 (msdi2_net): its encoder and decoder against the MSDI2E fixture's representation
    w2 = read_safetensors(os.path.join(fixtures, 'msdi2e_w4.weights.safetensors'))
    ev2 = read_safetensors(os.path.join(fixtures, 'msdi2e_w4.eval.safetensors'))
    net2 = MsdiNet(wf=4, version=2).eval()
    rep = {k: v for k, v in w2.items() if k.startswith(('net_prior.', 'prior_upsampling.'))}
    own = {k for k in net2.state_dict() if k.startswith(('net_prior.', 'prior_upsampling.'))}
    if set(rep) != own:
        failures.append(f'v2 representation keys differ: {sorted(set(rep) ^ own)[:5]}')
    net2.load_state_dict(rep, strict=False)
    with torch.no_grad():
        z2, latents2 = net2.represent(ev2['blurry'])
    v2_err = max([max_abs(z2, ev2['prior_z'])] + [max_abs(l, ev2[f'latents.{i}']) for i, l in enumerate(latents2)])
    if not v2_err < 1e-4:
        failures.append(f'v2 representation {v2_err:.2e}')

    n_params = sum(p.numel() for p in net.parameters())
    n_train = sum(p.numel() for p in net.parameters() if p.requires_grad)
    print(f'{"FAIL" if failures else "ok"}: msdi_net_w4 ({n_params} params, {n_train} trainable) '
          f'eval worst {worst_eval[0]} {worst_eval[1]:.1e} abs; train outputs {train_out:.1e} abs, '
          f'loss {loss.item():.6f} (err {loss_err:.1e}), {len(grad_keys)} grads worst {worst_grad[0]} '
          f'{worst_grad[1]:.1e} rel, {sum(k.startswith("after.") for k in fx_train)} buffers worst '
          f'{worst_after[1]:.1e} abs; v2 representation (msdi2e_w4) {v2_err:.1e} abs')
    for f in failures[:20]:
        print('  mismatch:', f)
    return 1 if failures else 0


# ---------------------------------------------------------------------------- benchmarks

def timed(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def bench_forward(args):
    torch.manual_seed(0)
    net = MsdiNet(wf=args.wf, version=1).eval()
    x = torch.rand(1, 3, args.size, args.size)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.inference_mode():
            net(x)

    return step


def bench_train(args):
    global NHIDDEN
    NHIDDEN = args.spade_hidden
    torch.manual_seed(0)
    dev = torch.device(args.device)
    net = MsdiNet(wf=args.wf, version=2).train().to(dev)
    # The batch starts on the CPU, as the trainer's batches come from its loader.
    x = torch.rand(args.batch, 3, args.size, args.size)
    y = torch.rand(args.batch, 3, args.size, args.size)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-4, betas=(0.9, 0.99))
    if dev.type == 'cuda':
        torch.backends.cudnn.benchmark = True  # as msdi's trainer on CUDA

    def step():
        opt.zero_grad()
        xd, yd = x.to(dev), y.to(dev)
        if args.channels_last:
            xd, yd = (t.contiguous(memory_format=torch.channels_last) for t in (xd, yd))
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.amp == 'bf16'):
            out_1, out_2 = net(xd)
        loss = psnr_loss(out_1.float(), yd) + psnr_loss(out_2.float(), yd)
        loss.item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, float('inf')).item()  # msdi logs the gradient norm
        opt.step()

    return step


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('what', choices=['check', 'forward', 'train'])
    p.add_argument('--fixtures', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                                                      'shared', 'fixtures'))
    p.add_argument('--wf', type=int)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--channels-last', action='store_true', help='NHWC weights and inputs (not the baseline)')
    p.add_argument('--device', default='cpu', help='train: cpu or cuda')
    p.add_argument('--amp', choices=['off', 'bf16'], default='off', help='train: bfloat16 autocast')
    p.add_argument('--spade-hidden', type=int, default=NHIDDEN, help='train: SPADE width (the paper: 128)')
    p.add_argument('--profile', action='store_true', help='per-op times of one more run, on stderr')
    p.add_argument('--serve', action='store_true', help='no warm-up: one timed step per "run" line on stdin')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == 'check':
        sys.exit(check(args.fixtures))
    if args.wf is None:
        args.wf = 64 if args.what == 'forward' else 16
    step = bench_forward(args) if args.what == 'forward' else bench_train(args)
    if args.serve:
        # One timed step per input line ("run"), one JSON line back: lets a caller interleave
        # these steps with its own, run by run, in the same session.
        print(json.dumps({'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads()}), flush=True)
        for line in sys.stdin:
            if line.strip() != 'run':
                break
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            print(json.dumps({'ms': (time.perf_counter() - t0) * 1e3, 'cpu_ms': (time.process_time() - c0) * 1e3}),
                  flush=True)
        return
    median_ms, times = timed(step, args.warmup, args.repeats)
    if args.profile:
        cuda = args.what == 'train' and args.device.startswith('cuda')
        acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
        with torch.profiler.profile(activities=acts) as prof:
            step()
            if cuda:
                torch.cuda.synchronize()
        table = prof.key_averages().table
        if not cuda:
            print(table(sort_by='self_cpu_time_total', row_limit=30), file=sys.stderr)
        else:
            try:  # how many kernels one step launches: with small ones, their count sets its time
                n = sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
                print(f'CUDA kernels in one step: {n}', file=sys.stderr)
            except Exception as e:
                print(f'CUDA kernels in one step: not counted ({e})', file=sys.stderr)
            try:  # PyTorch 2.4 renamed the CUDA columns 'device'
                print(table(sort_by='self_device_time_total', row_limit=30), file=sys.stderr)
            except Exception:
                print(table(sort_by='self_cuda_time_total', row_limit=30), file=sys.stderr)
    out = {'what': args.what, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'wf': args.wf,
           'size': args.size, 'median_ms': median_ms, 'times_ms': times}
    if args.what == 'train':
        out.update(batch=args.batch, device=args.device, amp=args.amp, spade_hidden=args.spade_hidden)
    if args.channels_last:
        out['channels_last'] = True
    print(json.dumps(out))


if __name__ == '__main__':
    main()
