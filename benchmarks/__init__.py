"""Recurring measurements, each run from the checkout's root as `python -m benchmarks.<name> [--help]`.

Training (torch):
  meta_train_throughput  the batched meta-iteration against the plain per-task loop: ms per
                         meta-iteration, the speed-up, convolution GFLOP/s (CPU or CUDA)
  meta_train_breakdown   where an inner step's time goes, batched and per task: the model with
                         layers cut away, each convolution's kernels against a bmm of the same FLOPs
  cuda_graph_meta_step   the meta-iteration replayed as a CUDA graph against eager: equal results
                         (float64) and ms per meta-iteration
  algorithm_cost         Reptile, FOMAML and MAML as the inner steps grow: ms and peak MiB per
                         meta-iteration, the project's and learn2learn's side by side (CPU or CUDA)
  learning_curves        presets (or algorithms) x seeds trained as resumable runs: held-out accuracy
                         against meta-iterations and training time, mean and min-max over seeds
  open_set_study         which score, after the demo's adaptation, says "none of these": AUROC and flag
                         rates of novel characters and scribbles, accuracy, ECE and temperature per setting

The product's model (Bundle.adapt: its ONNX graphs and model.json):
  open_set               the "none of these" decision on held-out tasks: AUROC, novel characters,
                         scribbles and in-set queries flagged, accuracy, ECE, against the goals
  open_set_cost          Bundle.adapt with and without the open-set score, side by side: ms and ratio
  adaptation_starts      the demo's "Compare with" starts and its optimizer choice: accuracy of each
                         bundle after the same steps, Adam and SGD at several step sizes

The demo (a server of this checkout, headless Chromium):
  browser_adapt          pen-up to prediction shown, cold and warm, in the browser and on the server
  browser_cold_start     cold start of the browser mode, several servers or page settings side by side
  stroke_replay          Omniglot's pen trajectories replayed as mouse events: model-input difference
                         to the PNGs and few-shot accuracy on the replayed drawings
  open_set_browser       held-out pen trajectories and scribbles replayed on the page: in-set, novel
                         and scribble test drawings flagged "none of these" by the page's worker

The server:
  server_load            POST /api/adapt under load: adaptations/s, p50/p99 latency, 503s, memory;
                         --overload: capacity against 8x overload, Retry-After honoured or not
  schemathesis_run       generated requests against the OpenAPI schema: cases, failed checks, 5xx
  image_cost             the worst request PNGs the limits allow, and those they refuse: time and
                         peak memory per image, and of one request holding the most images

local_server.py starts the demo server these use. Where the figures are recorded: docs/results.md,
docs/web.md, docs/server.md. The one-off measurements behind past decisions are listed, with the
commit that holds their scripts, in docs/results.md ("Decisions measured once").
"""
