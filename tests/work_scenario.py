"""A scenario whose work an environment variable sets, for the bisection tests.

Loaded with ``--load tests/work_scenario.py``. ``test_work`` is a LinearNet run
``MULTINET_TEST_WORK`` times over its batch each step (1 where the variable is unset): the
same computation repeated, so an environment that sets it to 6 is a real slowdown of the
forward and backward phases, about sixfold, whatever else the machine is doing; and the variable is one that
env.json records (its ``settings``).
"""

import os

import torch
import torch.nn.functional as F

from multinet import LinearNet, Scenario, register

VARIABLE = "MULTINET_TEST_WORK"


@register
class RepeatedWork(Scenario):
    name = "test_work"
    description = f"LinearNet over its batch {VARIABLE} times per step"
    expected_flow = {"loss": {"net"}}

    def build_networks(self):
        s = self.sizes
        return {"net": LinearNet(s.features, 256, s.classes)}

    def make_batch(self, batch_size, generator):
        return {"x": torch.randn(batch_size, self.sizes.features, generator=generator),
                "target": torch.randint(0, self.sizes.classes, (batch_size,),
                                        generator=generator)}

    def loss_terms(self, networks, batch):
        times = int(os.environ.get(VARIABLE, "1"))
        losses = [F.cross_entropy(networks["net"](batch["x"]), batch["target"])
                  for _ in range(times)]
        return {"loss": sum(losses) / times}
