"""What every refusal of bad input looks like from outside: exit code 2, one line on stderr
naming what is wrong, no traceback."""


def refused_in_one_line(proc, *words: str) -> str:
    """``proc``'s stderr, once it is such a refusal and holds each of ``words``."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    return proc.stderr
