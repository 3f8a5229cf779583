"""PyTorch side of `msdi bench`: the same measurements in plain PyTorch eager, same threads.

Prints one JSON object. Usage: python3 bench_torch.py conv --threads N --repeats R
"""
import argparse
import json
import statistics
import time

import torch


def timed(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def conv(args):
    torch.manual_seed(0)
    x = torch.randn(1, 64, 128, 128)
    w = torch.randn(64, 64, 3, 3, requires_grad=True)
    xg = x.clone().requires_grad_(True)

    def fwd():
        with torch.inference_mode():
            torch.nn.functional.conv2d(x, w, padding=1)

    def fwd_bwd():
        y = torch.nn.functional.conv2d(xg, w, padding=1)
        y.sum().backward()
        w.grad = None
        xg.grad = None

    return {"forward_s": timed(fwd, 3, args.repeats), "forward_backward_s": timed(fwd_bwd, 2, args.repeats)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["conv"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    out.update(conv(args))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
