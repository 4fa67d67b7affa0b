"""The `mnistlab` command line: parse, call the Python API, print. No logic of its own.

Each verb has a `cmd_<verb>(args) -> int` handler and an `add_<verb>_parser` function. A
`UserError` anywhere becomes one line on stderr and exit code 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from .errors import UserError


# ---------------------------------------------------------------- data
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
            "--data-dir", default=None, metavar="DIR",
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
    from .data import load_dataset, stratified_split
    from .data.inspect import format_summary, save_digit_grid, summarize

    dataset = load_dataset(args.dataset, args.data_dir)
    if args.data_command == "show":
        out = save_digit_grid(dataset, args.out, per_class=args.per_class, split=args.split)
        print(f"wrote {out}")
        return 0
    split = stratified_split(dataset.train_labels, args.val_fraction, args.split_seed)
    info = summarize(dataset, split)
    if args.json:
        import json

        print(json.dumps(info, indent=2))
    else:
        print(format_summary(info))
    return 0


# ---------------------------------------------------------------- train
def _config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, its help text and choices read from the field's
    metadata. Unset flags stay out of the namespace, so a config file's values are only
    overridden by flags the user actually typed. Values are checked by TrainConfig, not here,
    so a flag and a TOML file get the same message."""
    import dataclasses
    import typing

    from .config import FIELD_TYPES, TrainConfig

    for f in dataclasses.fields(TrainConfig):
        text = f.metadata["help"].replace("%", "%%")
        if f.name == "model_kwargs":
            parser.add_argument(
                "--arch",
                dest="model_kwargs",
                action="append",
                metavar="KEY=VALUE",
                default=argparse.SUPPRESS,
                help=f"{text} (repeatable; VALUE is read as JSON)",
            )
            continue
        flag = "--" + f.name.replace("_", "-")
        hint = FIELD_TYPES[f.name]
        kind = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
        if kind is bool:
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{text} (default {'on' if f.default else 'off'})",
            )
            continue
        choices = f.metadata["choices"]
        parser.add_argument(
            flag,
            dest=f.name,
            type=kind,
            default=argparse.SUPPRESS,
            metavar="{" + ",".join(choices) + "}" if choices else None,
            help=text + ("" if f.default is None else f" (default {f.default})"),
        )


def _parse_pairs(items: list[str], flag: str = "--set") -> dict:
    """KEY=VALUE pairs; values are read as JSON where they parse (numbers, true, null)."""
    import json

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
    import dataclasses

    from .config import TrainConfig, load_toml

    values = {}
    if getattr(args, "config", None):
        values.update(load_toml(args.config))
    for f in dataclasses.fields(TrainConfig):
        if hasattr(args, f.name):
            value = getattr(args, f.name)
            values[f.name] = _parse_pairs(value, "--arch") if f.name == "model_kwargs" else value
    source = args.config if getattr(args, "config", None) else "flags"
    return TrainConfig.from_dict(values, source=str(source))  # from_dict validates


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
    import json
    from pathlib import Path

    from .data import load_dataset_cached
    from .engine import check_runnable, train
    from .ledger import RunFolder, run_id_for

    config = config_from_args(args)
    # Everything that would fail before the first epoch fails now, before any file is written.
    check_runnable(config, load_dataset_cached(config.dataset, config.data_dir))
    if config.out_dir is None:
        config.out_dir = str(Path("runs/train") / run_id_for(config))
    folder = RunFolder(config.out_dir)
    folder.check_same_run(config)
    recorded = folder.read_result()
    if recorded is not None and recorded["status"] != "failed" and not args.force:
        print(f"already trained (use --force to retrain): {folder.path}")
        print(
            f"status {recorded['status']}, val acc {_pct(recorded.get('val_acc'))}, "
            f"test acc {_pct(recorded.get('test_acc'))}"
        )
        return 0
    if not folder.claim():
        raise UserError(f"{folder.path}: being trained by {folder.claimed_by()}; wait for it")
    try:
        if recorded is not None:
            folder.reset()  # only the run's own files: --out-dir may hold other things too
        result = train(config, log=(lambda *a: None) if args.json else print, folder=folder)
    finally:
        folder.release()
    if args.json:
        print(json.dumps(result.to_dict() | {"history": result.history}, indent=1))
    else:
        m = result.metrics
        print(
            f"{result.status}: {config.model}, {result.params:,} parameters, best epoch "
            f"{result.best_epoch}, val acc {_pct(m['val_acc'])}, test acc {_pct(m['test_acc'])}, "
            f"{result.train_seconds:.1f}s training on {result.device} {result.precision}"
        )
        print(f"run folder: {config.out_dir}")
    return {"finished": 0, "diverged": 1, "pruned": 0, "interrupted": 130}[result.status]


# ---------------------------------------------------------------- evaluate
def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="recompute accuracy, loss and per-class accuracy")
    p.add_argument("checkpoint", nargs="?", help="a checkpoint.pt")
    p.add_argument("--split", default="test", help="test (default) or val")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--ensemble",
        nargs="+",
        metavar="CKPT",
        default=None,
        help="average these checkpoints' softmax probabilities (and CHECKPOINT's, if "
        "given); report each model's accuracy and the ensemble's",
    )
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args) -> int:
    import json

    from .evaluate import evaluate_checkpoint

    if args.ensemble:
        from .evaluate import evaluate_ensemble

        paths = ([args.checkpoint] if args.checkpoint else []) + args.ensemble
        out = evaluate_ensemble(paths, args.split, args.data_dir, args.device)
        if args.json:
            print(json.dumps(out, indent=1))
            return 0
        width = max(len(m["model"]) for m in out["models"] + [{"model": "ensemble"}])
        print(f"ensemble of {len(paths)} on {out['split']} ({out['images']} images):")
        for m in out["models"]:
            print(
                f"  {m['model']:<{width}}  acc {m['acc']:.4f}  loss {m['loss']:.4f}  {m['checkpoint']}"
            )
        best = max(m["acc"] for m in out["models"])
        ens = out["ensemble"]
        print(
            f"  {'ensemble':<{width}}  acc {ens['acc']:.4f}  loss {ens['loss']:.4f}  "
            f"({100 * (ens['acc'] - best):+.2f} points vs the best single model)"
        )
        return 0
    if not args.checkpoint:
        raise UserError("evaluate needs a checkpoint path")
    out = evaluate_checkpoint(args.checkpoint, args.split, args.data_dir, args.device)
    if args.json:
        print(json.dumps(out, indent=1))
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


# ---------------------------------------------------------------- sweep
def add_sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid of configs (default: the quick grid) and report")
    p.add_argument(
        "config",
        nargs="?",
        default=None,
        help="a sweep TOML file, or a shipped one by name (quick, seed, best, cpu_best)",
    )
    p.add_argument("--out", default=None, help="the sweep folder (default runs/<name>)")
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
        default=None,
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
    p.add_argument("--address", default=None, help="ray: auto or HOST:PORT of a running cluster")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="ray: CPUs each run gets")
    p.add_argument(
        "--gpus-per-run", type=float, default=0.0, help="ray: GPU fraction each run gets"
    )
    p.add_argument("--max-concurrent", type=int, default=None, help="ray: runs at once")
    p.add_argument("--retries", type=int, default=2, help="ray: retries of a lost run")
    p.add_argument(
        "--storage",
        default=None,
        metavar="URI",
        help="ray: where runs keep resume state for retries on other nodes "
        "(a shared path, s3://bucket/prefix, gs://...)",
    )
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args) -> int:
    from .sweep import load_sweep, prepare, summary_lines

    _check_sweep_name(args.config)
    settings = _sweep_settings(args)
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    # On a cluster the GPUs are on the workers, not necessarily here: Ray checks placement.
    sweep = load_sweep(
        args.config, args.out, settings, check=not args.status, check_device=args.backend != "ray"
    )
    if sweep.search is not None:
        return _cmd_search(args, sweep)
    if args.status:
        return _print_status(sweep)
    # The backend is ready before prepare() writes anything: a bad flag or a cluster that cannot
    # take a run must not leave a sweep folder behind.
    with _backend(args, sweep) as run_backend:
        todo = prepare(sweep)
        print(
            f"sweep {sweep.name}: {len(sweep.runs)} runs, {len(sweep.runs) - len(todo)} already "
            f"done, writing to {sweep.out_dir}",
            flush=True,
        )
        _start_tracking(args, sweep)
        outcomes = run_backend(todo)
        _stop_tracking()
    failed = [o for o in outcomes if o["status"] == "failed"]
    elsewhere = [o for o in outcomes if o["status"] == "claimed"]
    print("\n".join(["", *summary_lines(sweep)]))
    if not args.no_report:
        from .report import build_report

        index = build_report(sweep.out_dir)
        print(f"report: {index}")
    if elsewhere:
        print(
            f"{len(elsewhere)} run(s) are being trained by another process; rerun "
            "`mnistlab report` when they finish",
            file=sys.stderr,
        )
    if failed:
        print(f"{len(failed)} run(s) failed; rerun the same command to retry them", file=sys.stderr)
    return 1 if failed else 0


def _print_status(sweep) -> int:
    from collections import Counter

    from .sweep import statuses

    states = statuses(sweep)
    for run in sweep.runs:
        print(f"{states[run.run_id]:<11} {run.run_id}  {run.label}")
    counts = Counter(states.values())
    done = sum(counts[s] for s in ("finished", "diverged", "pruned"))
    print(
        f"{sweep.name}: {done}/{len(sweep.runs)} done "
        + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        + f"  ({sweep.out_dir})"
    )
    return 0


@contextlib.contextmanager
def _backend(args, sweep):
    """Yields the function that runs a list of the sweep's runs on the chosen backend."""
    if args.backend == "ray":
        from .backends.ray import ray_cluster
        from .sweep import pending_runs

        with ray_cluster(
            sweep,
            pending_runs(sweep),
            address=args.address,
            cpus_per_run=args.cpus_per_run,
            gpus_per_run=args.gpus_per_run,
            max_concurrent=args.max_concurrent,
            retries=args.retries,
            storage=args.storage,
        ) as run:
            yield run
        return
    from .backends.local import run_local

    yield lambda todo: run_local(sweep, todo, workers=args.workers)


def _check_sweep_name(name: str | None) -> None:
    """`mnistlab sweep quik`: neither a file nor a shipped sweep, so list the shipped ones."""
    from pathlib import Path

    from .config import suggest
    from .sweep import DEFAULT_SWEEP, bundled_config

    if name is None or Path(name).exists() or Path(name).suffix == ".toml":
        return  # a missing FILE.toml is reported by the loader, with its path
    shipped = sorted(p.stem for p in bundled_config(DEFAULT_SWEEP).parent.glob("*.toml"))
    if name not in shipped:
        close = suggest(name, shipped)
        raise UserError(
            f"{name}: no such sweep file or shipped sweep; shipped: {', '.join(shipped)}"
            + (f"; did you mean {close}?" if close else "")
        )


def _sweep_settings(args) -> dict:
    """The --set pairs, checked on their own so a mistake is blamed on --set, not on the
    sweep file they are merged into; then --tensorboard."""
    from .config import check_settings

    settings = _parse_pairs(args.settings, "--set")
    if "out_dir" in settings:
        raise UserError(
            "--set out_dir: a sweep puts each run in SWEEP_DIR/runs/RUN_ID; "
            "choose the sweep folder with --out DIR"
        )
    settings = check_settings(settings, source="--set")
    if args.mlflow:  # before any folder is made: `--mlflow seed` is a misplaced sweep name
        from .tracking import resolve_tracking_uri

        resolve_tracking_uri(args.mlflow, ".")
    return settings | ({"tensorboard": True} if args.tensorboard else {})


def _start_tracking(args, sweep) -> None:
    """--tensorboard: readable run names; --mlflow: log runs as they end (a background sync
    from the ledger, so runs trained by worker processes or Ray nodes are logged too; a last
    sync when this process exits, Ctrl-C included)."""
    bases = [p.config for p in sweep.search.points] if sweep.search is not None else []
    if any(c.tensorboard for c in [r.config for r in sweep.runs] + bases):
        from .tracking import TENSORBOARD_VIEW, link_tensorboard

        # A search links its trials as they start; a grid's runs are all known now.
        view = link_tensorboard(sweep.out_dir, {r.run_id: r.label for r in sweep.runs})
        print(f"tensorboard: tensorboard --logdir {view or sweep.out_dir / TENSORBOARD_VIEW}")
    if args.mlflow is not None:
        import atexit

        from .tracking import MlflowLogger, MlflowSync

        logger = MlflowLogger(sweep.out_dir, args.mlflow or None, experiment=sweep.name)
        sync = MlflowSync(logger).__enter__()  # opens the store now: a bad URI fails here
        atexit.register(sync.close)  # Ctrl-C or an error: still log what ended
        _MLFLOW_SYNCS.append(sync)
        print(f"mlflow: experiment {logger.experiment_name!r} in {logger.where()}", flush=True)


_MLFLOW_SYNCS: list = []


def _stop_tracking() -> None:
    """The last MLflow sync, once the runs are over (before the summary and report)."""
    import atexit

    while _MLFLOW_SYNCS:
        sync = _MLFLOW_SYNCS.pop()
        sync.close()
        atexit.unregister(sync.close)


def _cmd_search(args, sweep) -> int:
    """A sweep file with [search]: trials one after the other in this process (Optuna asks
    for each trial's settings and may stop it early), each a normal run in the ledger."""
    from .search import run_search, search_summary, status_lines
    from .sweep import summary_lines

    if args.status:
        print("\n".join(status_lines(sweep)))
        return 0
    if args.backend != "local" or args.workers != 1:
        raise UserError(
            "a [search] runs its trials one after the other in this process: "
            "leave out --backend ray and --workers"
        )
    spec = sweep.search.spec
    print(
        f"search {sweep.name}: {spec.trials} trial(s) x {len(sweep.search.points)} "
        f"({spec.sampler} sampler, {spec.pruner} pruner) over "
        + ", ".join(d.describe() for d in spec.space.values())
        + f"; writing to {sweep.out_dir}",
        flush=True,
    )
    _start_tracking(args, sweep)
    outcomes = run_search(sweep, progress=sys.stdout.isatty())
    _stop_tracking()
    summary = search_summary(sweep.out_dir)
    print(
        f"\nsearch: {summary['finished']} finished, {summary['pruned']} pruned, "
        f"{summary['diverged']} diverged; {summary['epochs_trained']} epochs trained of "
        f"{summary['epochs_if_unpruned']} without pruning"
    )
    print("\n".join(summary_lines(sweep)))
    if not args.no_report:
        from .report import build_report

        print(f"report: {build_report(sweep.out_dir)}")
    failed = [o for o in outcomes if o["status"] == "failed"]
    if failed:
        print(f"{len(failed)} trial run(s) failed; rerun to go on", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------- models
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
    import json

    from .models.summary import describe_model, describe_models

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
    def assignments(values: dict) -> str:
        return ", ".join(f"{k}={v}" for k, v in values.items())

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
        lines.append(f"fixed by this variant: {assignments(model['fixed'])}")
    if model["variants"]:
        lines.append(f"other variants of {model['class']}: {', '.join(model['variants'])}")
    lines.append(
        "not options: num_classes and in_channels come from the dataset, dropout from --dropout"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- report
def add_report_parser(sub) -> None:
    p = sub.add_parser("report", help="write a sweep's lab report (tables, figures, HTML)")
    p.add_argument("sweep_dir", help="a sweep folder (the one holding runs/)")
    p.add_argument("--out", default=None, help="output folder (default SWEEP_DIR/report)")
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
    from .report import build_report

    index = build_report(args.sweep_dir, args.out, lang=args.lang, pdf=args.pdf)
    print(f"report: {index}")
    if args.pdf:
        print(f"pdf: {index.with_name('report.pdf')}")
    return 0


# ---------------------------------------------------------------- predict
def add_predict_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify pictures of digits (PNG, JPEG, BMP, GIF, TIFF; any size or colour)",
        description="Classify pictures of digits with a trained checkpoint, or with the default "
        "model shipped in the package when the first argument is an image. Probabilities are "
        "calibrated (temperature scaling); a picture that is probably not one digit gets a "
        "warning. Exit status: 0 when "
        "every image was classified; 1 when some files exist but are not usable pictures (not "
        "an image, corrupt, blank, too large: each gets a line on stderr, the others are still "
        "classified); 2 for bad input found before anything runs: a missing or unreadable file, "
        "a bad checkpoint, the arguments the wrong way round, or an output that would "
        "overwrite something.",
    )
    p.add_argument(
        "images",
        nargs="+",
        metavar="[CHECKPOINT] IMAGE",
        help="a checkpoint.pt (optional: the default model without it), then image files",
    )
    p.add_argument("--json", action="store_true", help="print one JSON list, errors included")
    p.add_argument(
        "--save-preprocessed",
        metavar="DIR",
        default=None,
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
    """What `predict` and `serve` say when they use the model shipped in the package."""
    info = predictor.describe()
    test = info["test_accuracy"]
    real = (info.get("realworld") or {}).get("accuracy")
    numbers = ", ".join(
        part
        for part in (
            f"MNIST test {test:.2%}" if test is not None else "",
            f"real-world digits {real:.1%}" if real is not None else "",
        )
        if part
    )
    return (
        f"default model ({info['model']}, {info['parameters']:,} parameters"
        + (f"; {numbers}" if numbers else "")
        + "); give a checkpoint first to use your own"
    )


def cmd_predict(args) -> int:
    """Exit 0 when every file was classified, 1 when any could not be (each gets a line)."""
    from .predict import Predictor, format_result, predict_files, results_to_json, split_arguments

    checkpoint, images = split_arguments(args.images)
    predictor = None
    if checkpoint is None:
        predictor = Predictor(None, args.device)
        print(f"using the {_default_model_line(predictor)}", file=sys.stderr)
    results = predict_files(
        checkpoint,
        images,
        predictor=predictor,
        device=args.device,
        save_preprocessed=args.save_preprocessed,
        force=args.force,
    )
    for r in results:
        if r["error"]:
            print(f"mnistlab: error: {r['error']}", file=sys.stderr)
    if args.json:
        print(results_to_json(results))
    else:
        for r in results:
            if not r["error"]:
                print(format_result(r))
    if args.save_preprocessed is not None:
        print(f"preprocessed images in {args.save_preprocessed}", file=sys.stderr)
    return 1 if any(r["error"] for r in results) else 0


# ---------------------------------------------------------------- export
def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX, checked with onnxruntime")
    p.add_argument("checkpoint", help="a checkpoint.pt")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="onnx (the only one)")
    p.add_argument(
        "--out", default=None, help="the file to write (default: the checkpoint's path with .onnx)"
    )
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
    p.add_argument("--data-dir", default=None, help="where the checkpoint's dataset lives")
    p.add_argument("--json", action="store_true", help="print the export report as JSON")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out file that mnistlab export did not write (never the "
        "checkpoint itself)",
    )
    p.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    import json

    from .export import export_onnx

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


# ---------------------------------------------------------------- serve
def add_serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="web demo: draw a digit, see the prediction (serve extra)")
    p.add_argument(
        "checkpoint", nargs="?", default=None, help="a checkpoint.pt (default: the default model)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args) -> int:
    from .serve.app import run_server

    run_server(args.checkpoint, args.host, args.port)
    return 0


# ---------------------------------------------------------------- mlflow-import
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
        default=None,
        metavar="URI",
        help="MLflow tracking URI or a folder (default SWEEP_DIR/mlruns, SQLite)",
    )
    p.add_argument("--experiment", default=None, help="experiment name (default the sweep's name)")
    p.set_defaults(handler=cmd_mlflow_import)


def cmd_mlflow_import(args) -> int:
    from .tracking import import_to_mlflow

    logger, logged = import_to_mlflow(args.sweep_dir, args.tracking_uri, args.experiment)
    print(
        f"mlflow: logged {len(logged)} run(s), {len(logger.logged()) - len(logged)} were "
        f"there already; experiment {logger.experiment_name!r} in {logger.where()}"
    )
    return 0


# ---------------------------------------------------------------- main
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
    after the subcommand, and the flags and subcommands it knows kept for suggestions."""

    def __init__(self, *args, **kwargs) -> None:
        self.flags: list[str] = []
        self.subcommands: argparse._SubParsersAction | None = None
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

    def add_subparsers(self, **kwargs) -> argparse._SubParsersAction:
        self.subcommands = super().add_subparsers(**kwargs)
        return self.subcommands


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mnistlab", description="Train, compare and tune CNNs on MNIST-format digits."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in PARSER_BUILDERS:
        add(sub)
    return parser


def parse_command_line(parser: _Parser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, or exit 2 with the usage of the (sub)command that was typed and the closest
    flag to an unknown one ("did you mean --epochs?")."""
    from .config import suggest

    args, extras = parser.parse_known_args(argv)
    if extras:
        where = parser
        while where.subcommands is not None:  # down to the innermost subcommand typed
            chosen = getattr(args, where.subcommands.dest, None)
            if chosen not in where.subcommands.choices:
                break
            where = where.subcommands.choices[chosen]
        unknown = next((a.split("=")[0] for a in extras if a.startswith("-")), None)
        close = unknown and suggest(unknown, [f for f in where.flags if f.startswith("--")])
        where.error(
            f"unrecognized arguments: {' '.join(extras)}"
            + (f"; did you mean {close}?" if close else "")
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(build_parser(), argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        if getattr(args, "debug", False):
            raise
        # One line, whatever the message holds (a path with a newline, a library's text).
        print(f"mnistlab: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
