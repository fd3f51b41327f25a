"""The numbers of the sequential plans (``bench/analyze/sequential.py``), apart from their
arithmetic: the paired rounds' coordinator runs under an interpreter with no numpy
(``bench/tools/paired.py``) and needs them too. Standard library only.
"""

# Paired rounds: looks at FIRST_LOOK rounds, then at a quarter more rounds each, up to
# MAX_ROUNDS (3, 4, 5, 7, 9, 12, 15, 19, 24). ALPHA_CHANGE is spent over them for a change
# (what a user acts on), ALPHA_SAME for "no change past the threshold" (which only costs
# power where wrong).
FIRST_LOOK, LOOK_GROWTH, MAX_ROUNDS = 3, 1.25, 24
ALPHA_CHANGE, ALPHA_SAME = 0.002, 0.2
# Rounds of blocks each comparison group gets in each environment's sweep of a paired
# round, the same in every environment so that their turns keep timing the same group:
# a round's medians need not be precise, the rounds' spread is what is judged.
GROUP_ROUNDS = 5
