"""Scenarios from real joint training, at their published sizes (and a ``tiny`` one for the
CPU): DCGAN, CycleGAN, Soft Actor-Critic, a CLIP-style dual encoder, distillation. Importing
this package registers them, in this order."""

from multinet.workloads import dcgan
from multinet.workloads import cyclegan
from multinet.workloads import sac
from multinet.workloads import clip
from multinet.workloads import distill

__all__ = ["dcgan", "cyclegan", "sac", "clip", "distill"]
