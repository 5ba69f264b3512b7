"""``picaffect export MODEL OUT.onnx``: a checkpoint as an ONNX file that scores on its own.

The graph takes float32 (N, 3, size, size) pixels (uint8 times the spec's
``input_scale``) and gives the network's (N, 2) outputs; the spec (input size,
input scaling, output mapping to 1..9) and the model's name are in the file's
``metadata_props`` (``backends.onnx_metadata``), so onnxruntime alone, or any
other ONNX runtime, can score pictures with it.

A calibrated checkpoint (``picaffect calibrate``) gives the graph a second output,
``difficulty`` (N, 2), its error head on the pooled features, and the calibration's
scores go into ``metadata_props`` as ``picaffect.calibration`` (JSON): an ONNX file
then gives intervals as the checkpoint does. Runtimes that read only the first
output, and picaffect versions from before calibration, score such a file as before.

The graph is exported without folding batch norms (onnxruntime folds them when it
loads the file, as ``fuse_for_inference`` does for torch). TensorFlow's "SAME" padding
of the stride-2 convolutions (a Pad before the Conv, since torch convolutions pad
symmetrically) is moved into each Conv's own ``pads``: onnxruntime neither folds such a
Pad itself nor runs it in its blocked layout, and the Pads with the layout changes
around them took a third of the network's time. Weights that are exact
in float16 (the shipped fp16 checkpoints) are stored as float16 with a Cast to
float32 in front: half the file, the same numbers. Needs torch and onnx.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import write_bytes_atomically
from ..core.errors import UsageError
from .backends import ONNX_INPUT, ONNX_OUTPUT, onnx_metadata
from .intervals import DIFFICULTY_OUTPUT, ONNX_KEY, from_record

OPSET = 17


def _onnx():
    try:
        import onnx
    except ImportError:
        raise UsageError("writing ONNX files needs the onnx package: pip install 'picaffect[train]' "
                         "(or pip install onnx)") from None
    return onnx


def to_onnx_bytes(source: str | Path, name: str | None = None, metadata: dict[str, Any] | None = None) -> bytes:
    """A checkpoint file as a serialised ONNX model with picaffect metadata."""
    onnx = _onnx()
    import torch

    from .checkpoint import build_model, read

    record = read(source)
    model, spec = build_model(record, source)
    calibration, head = from_record(record, str(source))
    outputs = [ONNX_OUTPUT]
    if head is not None:
        from .forward import WithDifficulty

        model = WithDifficulty(model, head["weight"], head["bias"]).eval()
        outputs.append(DIFFICULTY_OUTPUT)
    example = torch.zeros(2, 3, spec.size, spec.size)
    buffer = io.BytesIO()
    export_kwargs = dict(input_names=[ONNX_INPUT], output_names=outputs, opset_version=OPSET,
                         dynamic_axes={ONNX_INPUT: {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
                         do_constant_folding=True)
    # PRESERVE on a model in eval mode: batch norms stay BatchNormalization nodes in inference form (the
    # EVAL default folds them into the convolutions, which makes the fp16 weights inexact in the file).
    export_kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # padding fixed for the one input size
        warnings.filterwarnings("ignore", message=".*constant folding.*")  # the model is in eval mode
        # The TorchScript exporter on purpose: the torch.export one needs onnxscript and gives the same graph here.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            torch.onnx.export(model, (example,), buffer, dynamo=False, **export_kwargs)
        except TypeError:  # a torch without the ``dynamo`` switch
            torch.onnx.export(model, (example,), buffer, **export_kwargs)
    proto = onnx.load_from_string(buffer.getvalue())
    _fold_pads_into_convs(proto)
    _fp16_where_exact(proto)
    extra = {**dict(record.get("metadata") or {}), **(metadata or {})}
    extra.pop("trained_with", None)  # a training config, not needed to score (and may be large)
    properties = onnx_metadata(spec, name or Path(source).stem, extra)
    if calibration is not None:
        properties[ONNX_KEY] = calibration.to_json()
        if head is not None:
            properties["picaffect.output"] += (f"; '{DIFFICULTY_OUTPUT}': (N, 2) the error head's difficulty, which "
                                               f"scales the calibration's interval half-widths")
    for key, value in properties.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "picaffect"
    proto.doc_string = f"picaffect model {name or Path(source).stem}: valence and arousal on the 1..9 SAM scale"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_onnx(source: str | Path, out: str | Path, name: str | None = None,
                metadata: dict[str, Any] | None = None) -> Path:
    """Write ``source`` (a checkpoint file) as ``out`` (.onnx), atomically."""
    data = to_onnx_bytes(source, name, metadata)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomically(out, data)


def _constant_value(graph, name: str) -> np.ndarray | None:
    """The value of ``name`` when it is computed from constants alone (None when it depends on an input)."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    inits = {i.name: i for i in graph.initializer}
    if name in inits:
        return numpy_helper.to_array(inits[name])
    producer = {out: node for node in graph.node for out in node.output}
    needed, todo, used_inits = [], [name], []
    while todo:
        tensor = todo.pop()
        if tensor in inits:
            used_inits.append(inits[tensor])
            continue
        node = producer.get(tensor)
        if node is None:  # a graph input
            return None
        if node not in needed:
            needed.append(node)
            todo.extend(i for i in node.input if i)
    model = helper.make_model(helper.make_graph(list(reversed(needed)), "constant", [],
                                                [helper.make_tensor_value_info(name, 0, None)], used_inits),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    return np.asarray(ReferenceEvaluator(model).run(None, {})[0])


def _fold_pads_into_convs(proto) -> int:
    """Move each zero Pad that feeds only a Conv into that Conv's ``pads``; returns how many were moved."""
    from onnx import helper

    graph = proto.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    dropped = []
    for pad in [n for n in graph.node if n.op_type == "Pad"]:
        users = consumers.get(pad.output[0], [])
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        if len(users) != 1 or users[0].op_type != "Conv" or pad.output[0] in outputs \
                or attrs.get("mode", b"constant") != b"constant":
            continue
        if len(pad.input) > 2 and pad.input[2]:
            fill = _constant_value(graph, pad.input[2])
            if fill is None or np.any(fill != 0):
                continue
        pads = _constant_value(graph, pad.input[1])
        if pads is None or pads.shape != (8,) or np.any(pads[[0, 1, 4, 5]] != 0) or np.any(pads < 0):
            continue
        conv = users[0]
        conv_attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        if conv_attrs.get("auto_pad", b"NOTSET") != b"NOTSET":
            continue
        old = list(conv_attrs.get("pads", [0, 0, 0, 0]))
        new = [old[0] + int(pads[2]), old[1] + int(pads[3]), old[2] + int(pads[6]), old[3] + int(pads[7])]
        for a in list(conv.attribute):
            if a.name == "pads":
                conv.attribute.remove(a)
        conv.attribute.append(helper.make_attribute("pads", new))
        conv.input[0] = pad.input[0]
        dropped.append(pad)
    for pad in dropped:
        graph.node.remove(pad)
    _drop_dead_nodes(graph)
    return len(dropped)


def _drop_dead_nodes(graph) -> None:
    """Remove nodes whose outputs nothing reads (the constant chains that computed the moved pads)."""
    while True:
        read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(out in read for out in n.output)]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


def _fp16_where_exact(proto, min_elements: int = 1024) -> None:
    """Store float32 initializers that are exact in float16 as float16 plus a Cast node (lossless)."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(init)
        if w.size < min_elements:
            continue
        half = w.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), w):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, name + "__fp16"))
        casts.append(helper.make_node("Cast", [name + "__fp16"], [name], to=TensorProto.FLOAT,
                                      name=f"cast_{name}"))
    if casts:
        nodes = casts + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)
    del onnx
