"""Run by tests/test_parallel.py under torchrun with 2 gloo processes: train.SyncBatchNorm on each rank's
share of a batch (3 + 2 items, uneven on purpose) against plain BatchNorm on the whole batch in one process:
outputs, input gradients, the ranks' summed parameter gradients and the running statistics must agree.
Exits non-zero (an AssertionError) when they do not."""

import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402


def check(bn_class, shape):
    rank = dist.get_rank()
    torch.manual_seed(0)
    plain = bn_class(shape[1], momentum=0.1)
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5)
        plain.bias.uniform_(-1, 1)
    sync = train.convert_sync_batch_norm(torch.nn.Sequential(bn_class(shape[1])))
    sync.load_state_dict(torch.nn.Sequential(plain).state_dict())
    x = torch.randn(shape) * 3 + 2  # 5 x C x ...
    w = torch.randn(shape)  # the loss sum(out * w) weights every output differently
    share = slice(0, 3) if rank == 0 else slice(3, 5)

    x_all = x.clone().requires_grad_()
    out_all = plain(x_all)
    (out_all * w).sum().backward()

    x_mine = x[share].clone().requires_grad_()
    out_mine = sync(x_mine)
    (out_mine * w[share]).sum().backward()

    torch.testing.assert_close(out_mine, out_all[share].detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x_mine.grad, x_all.grad[share], atol=1e-5, rtol=1e-5)
    grads = torch.cat([sync[0].weight.grad, sync[0].bias.grad])
    dist.all_reduce(grads)  # what DDP sums (and then divides by the number of ranks)
    torch.testing.assert_close(grads, torch.cat([plain.weight.grad, plain.bias.grad]), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(sync[0].running_mean, plain.running_mean)
    torch.testing.assert_close(sync[0].running_var, plain.running_var)
    assert int(sync[0].num_batches_tracked) == 1
    sync.eval()  # eval: the running statistics, no communication
    torch.testing.assert_close(sync(x[share]), plain.eval()(x[share]))


if __name__ == "__main__":
    dist.init_process_group("gloo")
    check(torch.nn.BatchNorm2d, (5, 3, 4, 6))  # the convolutions' BN: N x C x F x T
    check(torch.nn.BatchNorm1d, (5, 7))  # SequenceWise BN: (T N) x H
    print(f"rank {dist.get_rank()}: SyncBatchNorm agrees with BatchNorm on the whole batch")
    dist.destroy_process_group()
