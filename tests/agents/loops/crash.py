"""A progress hook that kills a training run mid-way (a crash at a known step)."""


class Crash(Exception):
    pass


def crash_after(step):
    """on_progress hook: raise Crash at the first progress report at or after `step`."""
    def hook(p):
        if p.step >= step:
            raise Crash

    return hook
