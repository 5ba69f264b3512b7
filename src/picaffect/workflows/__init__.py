"""Jobs that join several stages (build, train, evaluate, export): the only place that may.

``retrain``: a shipped model from rated sets to weights in one command;
``experiments``: the thesis's chapter 8 and leave-one-source-out.
"""
