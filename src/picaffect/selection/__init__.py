"""``picaffect select``: stimulus sets chosen from rated or predicted pictures, with a methods section's statistics.

    from picaffect.selection import Request, read_pool, select, write_result
    pool = read_pool("scores.csv")                       # or a built dataset folder (published ratings)
    request = Request(sets=3, size=30, differ=("valence", 1.5), balance=("source",),
                      match=(("arousal", 0.3), ("luminance", 5.0)), match_sd=("arousal",))
    result = select(pool, request)                       # SelectionError names a constraint that cannot be met
    write_result(result, "stimuli/")

or, as the command does it, in one call:

    from picaffect.selection import request_from_text, select_from_files
    result, written = select_from_files("scores.csv", "stimuli/",
                                        request_from_text(differ="valence:3", match=["arousal:0.3:sd"],
                                                          balance=["source"]))

Any numeric column of the pool can differ, match or be ranged (the picture features a
build or ``predict --describe`` computes, or the user's own); any categorical one can
be balanced. Modules: ``request`` (what is asked, parsed and checked), ``pool`` (reading
scores, exclusions), ``greedy`` (the sorted-window start), ``optimise`` (the mixed-integer
programme), ``choose`` (checking the request against the pool, trying centres, feasibility
messages), ``statistics`` (Welch t, TOST, SDs, counts), ``report`` and ``figure`` (the
files), ``from_files`` (scores file to written sets). The user's guide is docs/selection.md.
"""
from .choose import Result, select
from .from_files import select_from_files
from .pool import Pool, exclude, read_exclusions, read_pool
from .report import write_result
from .request import Range, Request, SelectionError, parse_amount, parse_match, parse_range, request_from_text

__all__ = ["Pool", "Range", "Request", "Result", "SelectionError", "exclude", "parse_amount", "parse_match",
           "parse_range", "read_exclusions", "read_pool", "request_from_text", "select", "select_from_files",
           "write_result"]
