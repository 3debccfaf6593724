"""How far a piece of code raises this process's peak memory, whatever ran before it (Linux)."""


def _status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def peak_growth_mib(function):
    """Runs ``function()``; returns how far the peak RSS rose above the RSS before it, in MiB.

    The peak (VmHWM) is first reset to the current RSS (``/proc/self/clear_refs``),
    so a higher peak of an earlier test in the same process hides nothing.
    """
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    before = _status_kib("VmRSS")
    function()
    return (_status_kib("VmHWM") - before) / 1024
