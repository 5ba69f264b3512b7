"""``picaffect select``: stimulus sets chosen from rated or predicted pictures, with a methods section's statistics.

    from picaffect.selection import Request, read_pool, select, write_result
    pool = read_pool("scores.csv")                       # or a built dataset folder (published ratings)
    request = Request(sets=2, size=40, differ=("valence", 3.0), match=(("arousal", 0.3),))
    result = select(pool, request)                       # SelectionError names a constraint that cannot be met
    write_result(result, "stimuli/")

Modules: ``request`` (what is asked, parsed and checked), ``pool`` (reading scores,
exclusions), ``optimise`` (the mixed-integer programme), ``choose`` (trying centres,
feasibility messages), ``statistics`` (Welch t, TOST), ``report`` (the files).
"""
from .choose import Result, select
from .pool import Pool, exclude, read_exclusions, read_pool
from .report import write_result
from .request import Range, Request, SelectionError, parse_amount, parse_range

__all__ = ["Pool", "Range", "Request", "Result", "SelectionError", "exclude", "parse_amount", "parse_range",
           "read_exclusions", "read_pool", "select", "write_result"]
