"""mnistlab: train, compare and tune CNNs on MNIST-format digits, and write the lab report.

    from mnistlab import TrainConfig, train, predict, save_model, load_model
    result = train(TrainConfig(model="lenet", epochs=2))
    print(result.metrics["test_acc"])
    print(predict(result.model, "digit.png")["label"])    # paths, arrays, PIL images
    save_model(result.model, "lenet.pt")                  # load_model("lenet.pt") reads it
    print(predict(load_model(), "digit.png")["label"])    # the default model, shipped

    result = run_experiment("quick")       # a sweep file's grid (or search), then its report
    print(result.summary, result.report)

    class Print(Callback):                 # a tool that watches training: see engine.Callback
        def on_epoch_end(self, row, state):
            print(row["epoch"], row["val_acc"])   # return Stop("why") to end the run early
    train(TrainConfig(model="lenet"), callbacks=[Print()])

    from mnistlab import read_runs, runs_frame
    runs = read_runs("runs/quick")         # every run: config, history, result (plain dicts)
    frame = runs_frame("runs/quick")       # the same as a pandas DataFrame (the data extra)

Names are imported on first use, so `import mnistlab` (and the CLI's --help) stays fast.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "mnistlab.data",
    "stratified_split": "mnistlab.data",
    "create_model": "mnistlab.models",
    "list_models": "mnistlab.models",
    "TrainConfig": "mnistlab.config",
    "train": "mnistlab.engine",
    "Callback": "mnistlab.engine",
    "Stop": "mnistlab.engine",
    "TrainResult": "mnistlab.ledger",
    "load_checkpoint": "mnistlab.checkpoint",
    "save_model": "mnistlab.checkpoint",
    "load_model": "mnistlab.predict",
    "predict": "mnistlab.predict",
    "evaluate_checkpoint": "mnistlab.evaluate",
    "load_sweep": "mnistlab.sweep",
    "run_experiment": "mnistlab.experiment",
    "read_runs": "mnistlab.ledger",
    "runs_frame": "mnistlab.tracking",
    "epochs_frame": "mnistlab.tracking",
    "build_report": "mnistlab.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")
