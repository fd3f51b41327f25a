"""Training loops written apart from ``multinet``, and the check that holds the harness's
joint step against them.

``verify``'s setup equivalence compares the optimizer setups with each other, all built by
the same ``JointStep``: a defect that every setup shares (a wrong Adam beta, a missing
``zero_grad``) passes it. The loops here share no code with ``multinet``: the article's
scenarios are written the way the article writes its loop, with ``nn.Module``s,
``torch.optim`` given its documented defaults, ``loss.backward()``, ``opt.step()`` and
``zero_grad()``; the real workloads the way their reference code writes them, with their
own copies of the networks (``gan_networks``, ``sac_networks``, ``clip_networks``,
``resnet``) and the reference code's optimizers and hyperparameters.
"""
