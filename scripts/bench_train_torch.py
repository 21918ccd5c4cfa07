#!/usr/bin/env python3
"""PyTorch side of scripts/bench-train.sh: one training step of Hinton's 784-800-800-10
ReLU student MLP at batch 128 (forward, cross-entropy, backward, Adam lr 1e-3), the step
that train.BenchmarkTrainStepMLP800 times in Go. Prints "samples/s <value>" (wall clock)
and "cpu-ms/step <value>" (CPU time of the process, all threads, per step).

Exit status 3 (and a message on stderr) when torch cannot be imported."""
import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=3.0, help="time to measure for")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    args = ap.parse_args()
    try:
        import torch
    except ImportError as e:  # the caller reports this and skips PyTorch
        print(f"torch is not importable: {e}", file=sys.stderr)
        sys.exit(3)

    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 800), torch.nn.ReLU(),
        torch.nn.Linear(800, 800), torch.nn.ReLU(),
        torch.nn.Linear(800, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.rand(args.batch, 784)  # positive inputs, as the Go benchmark's
    y = torch.randint(0, 10, (args.batch,))

    def step():
        out = model(x)
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    n = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    while True:
        step()
        n += 1
        el = time.perf_counter() - t0
        if el >= args.seconds:
            break
    cpu = time.process_time() - c0
    print(f"samples/s {n * args.batch / el:.1f}")
    print(f"cpu-ms/step {cpu * 1e3 / n:.2f}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{n} steps in {el:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
