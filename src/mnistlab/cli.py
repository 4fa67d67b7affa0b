"""The `mnistlab` command line: parse, call the Python API, print. No logic of its own.

Each verb has a `cmd_<verb>(args) -> int` handler and an `add_<verb>_parser` function. A
`UserError` anywhere becomes one line on stderr and exit code 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path

from .config import FIELD_TYPES, TrainConfig, check_settings, load_toml, suggest
from .errors import UserError
from .uris import mask_uris_in

# Each verb imports the layer it calls inside its handler (marked "start-up cost"): that keeps
# `mnistlab --help`, a mistyped flag or `sweep --status` from importing torch, the models and
# the report first (about 0.1 s for this module against 2-3 s for all of them).


def add_data_parser(sub) -> None:
    p = sub.add_parser("data", help="inspect datasets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    info = dsub.add_parser("info", help="sizes, class counts, split sizes, checksum status")
    show = dsub.add_parser("show", help="write a PNG grid of sample images per class")
    for q in (info, show):
        q.add_argument(
            "--dataset", default="mnist", help="mnist (bundled), fashion-mnist, kmnist (downloaded)"
        )
        q.add_argument(
            "--data-dir", metavar="DIR",
            help="a folder with the four IDX files (plain or .gz; torchvision's X/raw/ works too)",
        )  # fmt: skip
    info.add_argument("--val-fraction", type=float, default=0.1)
    info.add_argument("--split-seed", type=int, default=0)
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    show.add_argument("--out", default="digits.png", help="PNG file to write (default digits.png)")
    show.add_argument("--per-class", type=int, default=10, help="images per class (1 to 50)")
    show.add_argument("--split", choices=("train", "test"), default="train")
    p.set_defaults(handler=cmd_data)


def cmd_data(args) -> int:
    from .data import load_dataset, stratified_split  # start-up cost
    from .data.inspect import format_summary, save_digit_grid, summarize

    dataset = load_dataset(args.dataset, args.data_dir)
    if args.data_command == "show":
        out = save_digit_grid(dataset, args.out, per_class=args.per_class, split=args.split)
        print(f"wrote {out}")
        return 0
    split = stratified_split(dataset.train_labels, args.val_fraction, args.split_seed)
    info = summarize(dataset, split)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0


def _config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, its help text and choices read from the field's
    metadata. Unset flags stay out of the namespace, so a config file's values are only
    overridden by flags the user actually typed. Values are checked by TrainConfig, not here,
    so a flag and a TOML file get the same message."""
    for f in dataclasses.fields(TrainConfig):
        text, choices = f.metadata["help"].replace("%", "%%"), f.metadata["choices"]
        hint = FIELD_TYPES[f.name]
        kind = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
        flag = "--" + f.name.replace("_", "-")
        if f.name == "model_kwargs":
            flag, options = "--arch", {"action": "append", "metavar": "KEY=VALUE"}
            text += " (repeatable; VALUE is read as JSON)"
        elif kind is bool:
            options = {"action": argparse.BooleanOptionalAction}
            text += f" (default {'on' if f.default else 'off'})"
        else:
            options = {"type": kind, "metavar": "{" + ",".join(choices) + "}" if choices else None}
            text += "" if f.default is None else f" (default {f.default})"
        parser.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, help=text, **options)


def _parse_pairs(items: list[str], flag: str) -> dict:
    """KEY=VALUE pairs; values are read as JSON where they parse (numbers, true, null)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag}: expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def config_from_args(args):
    """Defaults, then the --config file, then flags: the later wins."""
    values = load_toml(args.config) if args.config else {}
    for f in dataclasses.fields(TrainConfig):
        if hasattr(args, f.name):
            value = getattr(args, f.name)
            values[f.name] = _parse_pairs(value, "--arch") if f.name == "model_kwargs" else value
    return TrainConfig.from_dict(values, source=str(args.config or "flags"))  # validates


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one model (flags or --config FILE.toml)")
    p.add_argument("--config", help="a TOML file of TrainConfig settings; flags override it")
    p.add_argument("--force", action="store_true", help="retrain even if this run already finished")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _config_flags(p)
    p.set_defaults(handler=cmd_train)


def _pct(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.2f}%"


def cmd_train(args) -> int:
    from .data import load_dataset_cached  # start-up cost
    from .engine import check_runnable
    from .ledger import RunFolder, run_id_for
    from .sweep import execute_run

    config = config_from_args(args)
    # Everything that would fail before the first epoch fails now, before any file is written.
    check_runnable(config, load_dataset_cached(config.dataset, config.data_dir))
    if config.out_dir is None:
        config.out_dir = str(Path("runs/train") / run_id_for(config))
    folder = RunFolder(config.out_dir)
    log = (lambda *a: None) if args.json else print
    outcome = execute_run(config, folder, log=log, progress=not args.json, force=args.force)
    recorded = folder.read_result() or {}
    if outcome["status"] == "claimed":
        raise UserError(f"{folder.path}: being trained by {outcome['holder']}; wait for it")
    if outcome["status"] == "failed" and outcome.get("permanent"):
        raise UserError(outcome["error"])
    if outcome["status"] == "skipped":
        print(f"already trained (use --force to retrain): {folder.path}")
    if args.json:
        print(json.dumps(recorded | {"history": folder.read_history()}, indent=1))
    elif recorded.get("status") == "failed":
        print(f"failed: {recorded['error']} (details in {folder.path / 'error.txt'})")
    else:
        print(
            f"{recorded['status']}: {config.model}, {recorded['params']:,} parameters, best epoch "
            f"{recorded['best_epoch']}, val acc {_pct(recorded['val_acc'])}, test acc "
            f"{_pct(recorded['test_acc'])}, {recorded['train_seconds']:.1f}s training on "
            f"{recorded['device']} {recorded['precision']}"
        )
        print(f"run folder: {config.out_dir}")
    return {"finished": 0, "diverged": 1, "failed": 1}.get(recorded.get("status"), 0)


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="recompute accuracy, loss and per-class accuracy")
    p.add_argument("checkpoint", nargs="?", help="a checkpoint.pt")
    p.add_argument("--split", default="test", help="test (default) or val")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--ensemble",
        nargs="+",
        metavar="CKPT",
        help="average these checkpoints' softmax probabilities (and CHECKPOINT's, if "
        "given); report each model's accuracy and the ensemble's",
    )
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_checkpoint, evaluate_ensemble  # start-up cost

    if args.ensemble:
        paths = ([args.checkpoint] if args.checkpoint else []) + args.ensemble
        out = evaluate_ensemble(paths, args.split, args.data_dir, args.device)
    elif args.checkpoint:
        out = evaluate_checkpoint(args.checkpoint, args.split, args.data_dir, args.device)
    else:
        raise UserError("evaluate needs a checkpoint path")
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    if args.ensemble:
        gain = 100 * (out["ensemble"]["acc"] - max(m["acc"] for m in out["models"]))
        note = f"({gain:+.2f} points vs the best single model)"
        rows = [*out["models"], out["ensemble"] | {"model": "ensemble", "checkpoint": note}]
        width = max(len(m["model"]) for m in rows)
        print(f"ensemble of {len(out['models'])} on {out['split']} ({out['images']} images):")
        for m in rows:
            print(
                f"  {m['model']:<{width}}  acc {m['acc']:.4f}  loss {m['loss']:.4f}  {m['checkpoint']}"
            )
        return 0
    print(
        f"{out['model']} on {out['split']} ({out['images']} images): acc {out['acc']:.4f}, "
        f"loss {out['loss']:.4f}"
    )
    for cls, acc in enumerate(out["per_class_accuracy"]):
        print(f"  class {cls}: {acc:.4f}")
    if out["recorded_test_acc"] is not None:
        on = out["recorded_test_images"]
        print(
            f"recorded at training: test acc {out['recorded_test_acc']:.4f}"
            + (f" (on the first {on} test images)" if on else "")
        )
    if out.get("ece") is not None:
        print(
            f"calibration: expected calibration error {out['ece']:.4f} before, "
            f"{out['ece_calibrated']:.4f} after temperature scaling (T = {out['temperature']:.3f}"
            + (", fitted on val)" if out["calibrated"] else "; this checkpoint has none)")
        )
    return 0


# The sweep's Ray flags: each is a keyword argument of backends.ray.ray_cluster.
RAY_FLAGS = [
    ("--address", str, "auto or HOST:PORT of a running cluster (default: a private Ray)"),
    ("--cpus-per-run", float, "CPUs each run gets (default 1)"),
    ("--gpus-per-run", float, "GPU fraction each run gets (default 0)"),
    ("--max-concurrent", int, "runs at once (default: as many as fit)"),
    ("--retries", int, "retries of a run whose worker was lost (default 2)"),
    (
        "--storage",
        str,
        "where runs keep resume state for retries on other nodes "
        "(a shared path, s3://bucket/prefix, gs://...)",
    ),
]


def add_sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid of configs (default: the quick grid) and report")
    p.add_argument(
        "config",
        nargs="?",
        help="a sweep TOML file, or a shipped one by name (quick, seed, best, cpu_best)",
    )
    p.add_argument("--out", help="the sweep folder (default runs/<name>)")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting in every run, e.g. --set epochs=1 (repeatable)",
    )
    p.add_argument("--status", action="store_true", help="show done/pending/failed and exit")
    p.add_argument("--no-report", action="store_true", help="skip writing the report")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files per run (the tensorboard extra); "
        "`tensorboard --logdir SWEEP_DIR/tensorboard` shows them by readable names",
    )
    p.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="also log each ended run to MLflow (the mlflow extra): a tracking URI, a folder, "
        "or nothing for SWEEP_DIR/mlruns (SQLite)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local backend: runs at once in separate processes (for GPUs)",
    )
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    for flag, kind, text in RAY_FLAGS:
        # Left out of the namespace unless typed: ray_cluster holds the defaults.
        p.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=f"ray: {text}")
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args) -> int:
    from . import experiment  # start-up cost

    settings = _sweep_settings(args)
    options = (flag[2:].replace("-", "_") for flag, _, _ in RAY_FLAGS)
    ray = {key: getattr(args, key) for key in options if hasattr(args, key)}
    if args.status:  # run_experiment checks the backend itself
        experiment.check_backend(args.backend, args.workers, ray)
        loaded = experiment.load_experiment(args.config, args.out, settings, check=False)
        print("\n".join(experiment.status_lines(loaded)))
        return 0
    result = experiment.run_experiment(
        args.config,
        out_dir=args.out,
        settings=settings,
        backend=args.backend,
        workers=args.workers,
        ray=ray,
        tensorboard=args.tensorboard,
        mlflow=args.mlflow,
        report=not args.no_report,
        log=lambda line: print(line, flush=True),
        progress=sys.stdout.isatty(),
    )
    print("\n".join(["", *result.summary]))
    if result.report is not None:
        print(f"report: {result.report}")
    for message in result.messages:
        print(message, file=sys.stderr)
    return 1 if result.count("failed") else 0


def _sweep_settings(args) -> dict:
    """The --set pairs, checked on their own so a mistake is blamed on --set, not on the
    sweep file they are merged into; before them, the sweep's name (`mnistlab sweep quik`:
    neither a file nor a shipped sweep, so list the shipped ones)."""
    from .sweep import shipped_sweeps  # start-up cost

    name, shipped = args.config, shipped_sweeps()
    # A missing FILE.toml is reported by the loader, with its path.
    if name and not (Path(name).exists() or Path(name).suffix == ".toml") and name not in shipped:
        close = suggest(name, shipped)
        raise UserError(
            f"{name}: no such sweep file or shipped sweep; shipped: {', '.join(shipped)}"
            + (f"; did you mean {close}?" if close else "")
        )
    settings = _parse_pairs(args.settings, "--set")
    if "out_dir" in settings:
        raise UserError(
            "--set out_dir: a sweep puts each run in SWEEP_DIR/runs/RUN_ID; "
            "choose the sweep folder with --out DIR"
        )
    value = args.mlflow
    # `mnistlab sweep --mlflow seed` would otherwise run the default sweep, logging to ./seed.
    if value and "://" not in value and (value.endswith(".toml") or value in shipped):
        raise UserError(
            f"--mlflow {value}: that is a sweep, not a tracking URI; put the sweep before "
            f"--mlflow (mnistlab sweep {value} --mlflow), or write a folder as ./{value}"
        )
    return check_settings(settings, source="--set")


def add_models_parser(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list every model (parameters, MACs per image, paper), or one model's options",
    )
    p.add_argument(
        "name", nargs="?", help="show this model's architecture options, defaults and variants"
    )
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--in-channels", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(handler=cmd_models)


def cmd_models(args) -> int:
    from .models.summary import describe_model, describe_models  # start-up cost

    if args.name:
        model = describe_model(args.name, args.num_classes, args.in_channels)
        print(json.dumps(model, indent=1) if args.json else _format_model(model, args.in_channels))
        return 0
    rows = describe_models(num_classes=args.num_classes, in_channels=args.in_channels)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    names = {r["name"]: _with_aliases(r["name"], r["aliases"]) for r in rows}
    width = max(len(name) for name in names.values())
    print(f"{'model':<{width}}  {'params':>12}  {'MMACs':>9}  paper")
    for r in rows:
        print(
            f"{names[r['name']]:<{width}}  {r['params']:>12,}  {r['macs'] / 1e6:>9.2f}  "
            f"{r['paper']}"
        )
    print(
        f"MACs: multiply-accumulates of Conv2d and Linear layers for one "
        f"{args.in_channels}x28x28 image; `mnistlab models NAME` lists a model's options"
    )
    return 0


def _with_aliases(name: str, aliases: list[str]) -> str:
    if not aliases:
        return name
    return f"{name} ({'alias' if len(aliases) == 1 else 'aliases'} {', '.join(aliases)})"


def _format_model(model: dict, in_channels: int) -> str:
    lines = [
        f"{model['name']}: {model['class']}, {model['params']:,} parameters, "
        f"{model['macs'] / 1e6:.2f} MMACs per {in_channels}x28x28 image",
        f"paper: {model['paper']}",
    ]
    if model["aliases"]:
        lines.append(f"same network as: {', '.join(model['aliases'])}")
    if model["options"]:
        lines.append("architecture options (--arch KEY=VALUE; [model_kwargs] in a TOML file):")
        width = max(len(k) for k in model["options"])
        lines += [f"  {k:<{width}}  default {v}" for k, v in model["options"].items()]
    else:
        lines.append("architecture options: none")
    if model["fixed"]:
        fixed = ", ".join(f"{k}={v}" for k, v in model["fixed"].items())
        lines.append(f"fixed by this variant: {fixed}")
    if model["variants"]:
        lines.append(f"other variants of {model['class']}: {', '.join(model['variants'])}")
    lines.append(
        "not options: num_classes and in_channels come from the dataset, dropout from --dropout"
    )
    return "\n".join(lines)


def add_report_parser(sub) -> None:
    p = sub.add_parser("report", help="write a sweep's lab report (tables, figures, HTML)")
    p.add_argument("sweep_dir", help="a sweep folder (the one holding runs/)")
    p.add_argument("--out", help="output folder (default SWEEP_DIR/report)")
    p.add_argument(
        "--lang",
        default="en",
        choices=["en", "zh"],
        help="language of the whole report: en (default) or zh (Chinese)",
    )
    p.add_argument(
        "--pdf",
        action="store_true",
        help="also print it to report.pdf (A4; needs playwright and Debian's chromium)",
    )
    p.set_defaults(handler=cmd_report)


def cmd_report(args) -> int:
    from .report import build_report  # start-up cost

    index = build_report(args.sweep_dir, args.out, lang=args.lang, pdf=args.pdf)
    print(f"report: {index}")
    if args.pdf:
        print(f"pdf: {index.with_name('report.pdf')}")
    return 0


def add_predict_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify pictures of digits (PNG, JPEG, BMP, GIF, TIFF; any size or colour)",
        description="Classify pictures of digits with a trained checkpoint, or with the default "
        "model shipped in the package when the first argument is an image. Probabilities are "
        "calibrated (temperature scaling); a picture that is probably not one digit gets a "
        "warning. Exit status: 0 when "
        "every image was classified; 1 when some were and other files are not usable pictures "
        "(not an image, corrupt, blank, too large: each gets a line on stderr); 2 when none "
        "could be classified, or for bad input found before anything runs: a missing, "
        "unreadable or non-regular file, a bad checkpoint, the arguments the wrong way round, "
        "or an output that would overwrite something. With --number, also 1 when a number holds "
        "a piece that could not be read as one digit (shown as ?).",
    )
    p.add_argument(
        "images",
        nargs="+",
        metavar="[CHECKPOINT] IMAGE",
        help="a checkpoint.pt (optional: the default model without it), then image files",
    )
    p.add_argument("--json", action="store_true", help="print one JSON list, errors included")
    p.add_argument(
        "--number",
        action="store_true",
        help="read each picture as a written number (several digits on one line): the digits "
        "left to right, each with its box and confidence; ? for a piece that is not one "
        "readable digit (touching digits that could not be separated, or not a digit)",
    )
    p.add_argument(
        "--save-preprocessed",
        metavar="DIR",
        help="also write each 28x28 image the model saw as DIR/<name>.png (never over an input; "
        "over other files only with --force)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="let --save-preprocessed replace files in DIR that mnistlab did not write",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or mps")
    p.set_defaults(handler=cmd_predict)


def _default_model_line(predictor) -> str:
    """What `predict` says when it uses the model shipped in the package."""
    info = predictor.describe()
    test = info["test_accuracy"]
    numbers = [f"MNIST test {test:.2%}"] if test is not None else []
    # Only the real-world half never looked at while tuning is quoted: a figure that
    # includes the tuning half would flatter the model.
    real = info.get("realworld") or {}
    held, digits = real.get("accuracy_reporting_half"), real.get("reporting_half_digits")
    if held is not None and digits:
        numbers.append(f"{held:.1%} on {digits:,} held-out scanned digits not used for tuning")
    return (
        f"default model ({info['model']}, {info['parameters']:,} parameters"
        + (f"; {', '.join(numbers)}" if numbers else "")
        + "); give a checkpoint first to use your own"
    )


def cmd_predict(args) -> int:
    from . import predict  # start-up cost

    checkpoint, images = predict.split_arguments(args.images)
    if args.number and args.save_preprocessed is not None:
        raise UserError("--save-preprocessed works on single digits; leave it out with --number")
    # Bad input is refused before the default model is loaded and named.
    predict.check_inputs(checkpoint, images)
    predictor = None
    if checkpoint is None:
        predictor = predict.Predictor(None, args.device)
        print(f"using the {_default_model_line(predictor)}", file=sys.stderr)
    if args.number:
        results = predict.read_number_files(
            checkpoint, images, device=args.device, predictor=predictor
        )
    else:
        results = predict.predict_files(
            checkpoint,
            images,
            predictor=predictor,
            device=args.device,
            save_preprocessed=args.save_preprocessed,
            force=args.force,
        )
    good = [r for r in results if not r["error"]]
    for r in results:
        if r["error"]:
            print(f"mnistlab: error: {r['error']}", file=sys.stderr)
    if args.json:
        print(predict.results_to_json(results))
    else:
        for r in good:
            print(predict.format_number(r) if args.number else predict.format_result(r))
    if args.save_preprocessed is not None:
        print(f"preprocessed images in {args.save_preprocessed}", file=sys.stderr)
    if not good:
        return 2
    incomplete = args.number and not all(r["complete"] for r in good)
    return 1 if len(good) < len(results) or incomplete else 0


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX, checked with onnxruntime")
    p.add_argument("checkpoint", help="a checkpoint.pt")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="onnx (the only one)")
    p.add_argument("--out", help="the file to write (default: the checkpoint's path with .onnx)")
    p.add_argument(
        "--dynamic-batch",
        action="store_true",
        help="accept any batch size (default: a fixed batch of --batch-size)",
    )
    p.add_argument("--batch-size", type=int, default=1, help="the fixed batch size (default 1)")
    p.add_argument(
        "--check-images",
        type=int,
        default=256,
        help="test images to compare torch and onnxruntime on (default 256)",
    )
    p.add_argument("--data-dir", help="where the checkpoint's dataset lives")
    p.add_argument("--json", action="store_true", help="print the export report as JSON")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out file that mnistlab export did not write (never the "
        "checkpoint itself)",
    )
    p.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    from .export import export_onnx  # start-up cost

    report = export_onnx(
        args.checkpoint,
        args.out,
        dynamic_batch=args.dynamic_batch,
        batch_size=args.batch_size,
        check_images=args.check_images,
        data_dir=args.data_dir,
        force=args.force,
    )
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    shape = ", ".join(str(d) for d in report["input"]["shape"])
    print(
        f"wrote {report['path']} ({report['bytes'] / 1024:,.0f} KB, {report['exporter']} exporter)"
    )
    print(
        f'input "image": float32 [{shape}], grey levels 0-255, white digit on black, MNIST form '
        f'(normalised inside the graph); output "logits": '
        f"[{', '.join(str(d) for d in report['output']['shape'])}]"
    )
    print(
        f"checked with onnxruntime on {report['images']} {report['check_data']} images: "
        f"max |logit difference| {report['max_abs_diff']:.2e}, "
        f"predictions agree {report['agreement']:.2%}"
    )
    return 0


def add_serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="web demo: draw a digit, see the prediction (serve extra)")
    p.add_argument("checkpoint", nargs="?", help="a checkpoint.pt (default: the default model)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args) -> int:
    from .serve.app import run_server  # start-up cost

    run_server(args.checkpoint, args.host, args.port)
    return 0


def add_mlflow_import_parser(sub) -> None:
    p = sub.add_parser(
        "mlflow-import",
        help="log a sweep's ended runs to MLflow (skips those already there)",
        description="Log every ended run (finished, diverged, pruned) of a sweep folder to "
        "MLflow, as `mnistlab sweep --mlflow` does while it trains: params, per-epoch "
        "metrics, final metrics, tags and the run folder's small files. Runs already logged "
        "(tagged with their ledger run id) are skipped, so it can be rerun at any time.",
    )
    p.add_argument("sweep_dir", help="a sweep folder (the one holding runs/)")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI or a folder (default SWEEP_DIR/mlruns, SQLite)",
    )
    p.add_argument("--experiment", help="experiment name (default the sweep's name)")
    p.set_defaults(handler=cmd_mlflow_import)


def cmd_mlflow_import(args) -> int:
    from .tracking import import_to_mlflow  # start-up cost

    logger, logged = import_to_mlflow(args.sweep_dir, args.tracking_uri, args.experiment)
    print(
        f"mlflow: logged {len(logged)} run(s), {len(logger.logged()) - len(logged)} were "
        f"there already; experiment {logger.experiment_name!r} in {logger.where()}"
    )
    return 0


PARSER_BUILDERS = [
    add_data_parser,
    add_train_parser,
    add_evaluate_parser,
    add_sweep_parser,
    add_models_parser,
    add_report_parser,
    add_mlflow_import_parser,
    add_predict_parser,
    add_export_parser,
    add_serve_parser,
]


class _Parser(argparse.ArgumentParser):
    """Every mnistlab parser, subcommands included (argparse builds them with this class):
    no prefix matching (`--epoch` is an error, not `--epochs`), `--debug` accepted before or
    after the subcommand, and an unknown argument refused with the usage of the (sub)command
    it was typed to and the closest flag to it ("did you mean --epochs?")."""

    def __init__(self, *args, **kwargs) -> None:
        self.flags: list[str] = []
        super().__init__(*args, **(kwargs | {"allow_abbrev": False}))
        self.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,  # absent from a subcommand must not undo it before
            help="show the traceback of an error",
        )

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.flags += action.option_strings
        return action

    def parse_known_args(self, args=None, namespace=None):
        # A subcommand's parser returns its leftovers to its parent's: the first to see them
        # is the innermost subcommand typed, the one whose usage and flags fit.
        args, extras = super().parse_known_args(args, namespace)
        if extras:
            unknown = next((a.split("=")[0] for a in extras if a.startswith("-")), None)
            close = unknown and suggest(unknown, [f for f in self.flags if f.startswith("--")])
            self.error(
                f"unrecognized arguments: {' '.join(extras)}"
                + (f"; did you mean {close}?" if close else "")
            )
        return args, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mnistlab", description="Train, compare and tune CNNs on MNIST-format digits."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in PARSER_BUILDERS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        if getattr(args, "debug", False):
            raise
        # One line, whatever the message holds (a path with a newline, a library's text), and
        # no URI's password, whoever wrote the message.
        line = mask_uris_in(" ".join(str(exc).splitlines()))
        print(f"mnistlab: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return 130
