"""Every word the report prints, in one catalogue per language (English is the default).

    tr = Tr("zh")
    tr("best_model", label=..., val=...)   # a template filled with str.format
    tr.join(["a", "b"])                    # "a, b" / "a、b"; strong=True: "a; b" / "a；b"

A value may be a pair (singular, plural) for English nouns: the `n` argument picks one.
Tests check that both languages have the same keys and the same {placeholders}.
Machine-readable outputs (CSV column names, file names, run ids, config values) are never
translated.
"""

from __future__ import annotations

import string

from ..errors import UserError

LANGUAGES = ("en", "zh")

EN: dict[str, str | tuple[str, str]] = {
    # ------------------------------------------------------------ the document
    "html_title": "mnistlab report: {name}",
    "title": "Lab report: {name}",
    "intro": (
        "{n} run in {sweep} ({tally}). Written by mnistlab report from the ledger alone: "
        "every number comes from the runs' result.json and history.json.",
        "{n} runs in {sweep} ({tally}). Written by mnistlab report from the ledger alone: "
        "every number comes from the runs' result.json and history.json.",
    ),
    "recorded_with": "Recorded with {env}.",
    "env_device": "device",
    "env_precision": "precision",
    "env_torch": "torch",
    "env_code": "code",
    "h_conclusions": "Conclusions",
    "other_runs_heading": "Runs that did not finish",
    "h_best": "Best combination per model",
    "h_user": "The user's reported results beside ours",
    "user_intro": (
        "The user's course report lists each architecture's best run of the lr x dropout grid "
        "(8 epochs). Its rows are transcribed as printed; ours are this sweep's best combination "
        "of the same architecture, chosen by validation accuracy."
    ),
    "h_grid": "Accuracy over the lr x dropout grid",
    "grid_intro": (
        "Per model, validation / test accuracy (%) of every combination: the user's grid as a "
        "table, then as a heatmap."
    ),
    "grid_single": "Models with a single lr x dropout combination ({models}) are in the table of best combinations.",
    "grid_none": "No model was run at more than one lr x dropout combination.",
    "h_overlay": "Every model's best run",
    "overlay_intro": (
        "Validation loss and accuracy per epoch of each model's best combination on one "
        "figure; the training curves are drawn faint and dotted."
    ),
    "h_size": "Accuracy, size and time",
    "size_none": "No finished run, so nothing to plot yet.",
    "size_one": "No budget has two models that learned, so there is nothing to set side by side.",
    "h_curves": "Loss and accuracy curves per combination",
    "curves_note": (
        "Rows: learning rate, each as a loss row with the accuracy row beneath it; columns: "
        "dropout. Train solid, validation dashed; the dotted grey line marks the epoch chosen by "
        "validation accuracy. Diverged runs are drawn as far as they went and marked in red."
    ),
    "curves_none": "No run in this ledger has a recorded history (history.json), so there are no curves.",
    "h_best_model": "Best model: {label}",
    "h_best_model_budget": "Best model of budget {letter}: {label}",
    "best_model_line": (
        "Run {run}: {val}% validation, {test}% test accuracy (95% interval {ci}%) at epoch {epoch}."
    ),
    "confusion_title": "Confusion matrix: {model}, test set ({n} images, {wrong} wrong)",
    "no_confusion": "No test confusion matrix was recorded for this run.",
    "no_gallery": "No misclassified test digits were recorded for this run.",
    "gallery_empty": "This run misclassified no test digit (or recorded none).",
    "gallery_unloadable": "Gallery of misclassified digits skipped: the test set could not be loaded ({error}).",
    "gallery_mismatch": (
        "Gallery of misclassified digits skipped: the test set now at {source} does not match "
        "the run's record (indices or labels differ)."
    ),
    "gallery_title": "Misclassified test digits of {model} (true→predicted), {shown} of {total} recorded",
    "h_runs": "All runs",
    "also_as": "Also as {links} (next to this page).",
    "font_note": (
        "Figure labels are in English: no font with Chinese glyphs was found "
        "(install fonts-noto-cjk)."
    ),
    "detail_caption": "Details, same rows:",
    "figure_subtitle_budget": " (budget {letter})",
    # ------------------------------------------------------------ budgets
    "budget_train": "{n} training images",
    "budget_train_subset": "{n} of {total} training images",
    "budget_train_unknown": "the training split",
    "budget_epochs": ("{n} epoch", "{n} epochs"),
    "budget_epochs_unknown": "the configured epochs",
    "budget_judged": "judged on {val} validation and {test} test images",
    "budget_judged_unknown": "judged on the full validation and test sets",
    "budget_label": "{train} × {epochs}, {judged}",
    "budget_title": "Budget {letter} ({models}): {budget}",
    "budget_part": "{letter}: {models}, {budget}",
    "mixed_budgets": (
        "This sweep mixes {n} budgets, so its runs were not trained and judged alike. Models are "
        "ranked, fitted and compared only within a budget, never across: {parts}."
    ),
    "budget_note": "Trained and judged on: {budget}.",
    # ------------------------------------------------------------ conclusions
    "no_runs": "The sweep has no runs recorded yet, so there is nothing to compare.",
    "no_finished": (
        "No run finished, so there is no best model yet ({n} run recorded).",
        "No run finished, so there is no best model yet ({n} runs recorded).",
    ),
    "no_usable": "No run of this budget finished and learned, so nothing here is ranked.",
    "default_settings": "default settings",
    "stop": ".",
    "times": "{x}x",
    "ci_wilson": "95% interval {ci}%, {n} test images",
    "ci_seeds": "95% t interval of the mean {ci}%, n={n}",
    "best_model": (
        "Best model by validation accuracy: {label} with {val} validation and {test} test "
        "accuracy ({ci}; {params} parameters, {seconds} s)."
    ),
    "best_model_tied": (
        "Highest validation accuracy: {label} with {val} validation and {test} test accuracy "
        "({ci}; {params} parameters, {seconds} s); {others} within noise of it, so no single "
        "best model is established."
    ),
    "best_model_tie": "{model} is named first against {others}: {why}.",
    "test_higher": (
        "On test accuracy {model}'s best combination scores higher ({a}% vs {b}%), but choosing "
        "on the test set would bias the estimate, so the ranking uses validation accuracy."
    ),
    "test_higher_paired": (
        "On test accuracy {model}'s best combination scores higher ({a}% vs {b}%; on the same "
        "{n} test images, exact McNemar test: {verdict}), but choosing on the test set would bias "
        "the estimate, so the ranking uses validation accuracy."
    ),
    "rank_item": "{model} {val}%",
    "rank_item_tied": "{model} {val}% (tied with the top within noise)",
    "ranking": "Validation accuracy of each model's best combination: {items}",
    "ranking_noise": (
        "; tied = inside the top's 95% interval for {n} validation images ({ci}%), so the "
        "order among them is not established"
    ),
    "runner_up": (
        "{a} ({a_test}% test) against the runner-up {b} ({b_test}% test) on the same {n} test "
        "images: only {a} was right on {only_a}, only {b} on {only_b}; exact McNemar test: {verdict}."
    ),
    "runner_up_untested": (
        "{a} ({a_test}% test) against the runner-up {b} ({b_test}% test): no paired test, {reason}."
    ),
    "untested_no_predictions": "because per-image test predictions were not recorded for both runs",
    "untested_different_images": "because they were judged on different test images",
    "significant": "the difference is significant ({p})",
    "indistinguishable": "the two are not distinguishable ({p})",
    "ci_only": "95% interval {ci}%",
    "with_ci": "{acc} ({ci})",
    "baseline_lead": (
        "Convolution against none: {mlp}, the baseline multilayer perceptron with no "
        "convolutions, reached a test accuracy of {mlp_acc}; {cnn}, the best convolutional network "
        "by validation accuracy, {cnn_acc}"
    ),
    "baseline_diff": "{model} {points} points higher",
    "baseline_diff_none": "the same accuracy",
    "baseline_cnn_better": (
        "{lead}: {diff}. On the same {n} test images only {cnn} was right on {only_a}, only "
        "{mlp} on {only_b}; exact McNemar test: {verdict}. So on this budget {cnn} was the more "
        "accurate, and {mlp}'s lower accuracy is the expected finding for a baseline, not a "
        "failed run; the two differ in far more than convolution (depth, width, normalisation, "
        "parameters), so the gap is not what convolution alone adds."
    ),
    "baseline_level": (
        "{lead}: {diff}. On the same {n} test images only {cnn} was right on {only_a}, only "
        "{mlp} on {only_b}; exact McNemar test: {verdict}. So on this budget the baseline "
        "without convolutions was as accurate as the best convolutional network, as far as "
        "these test images can tell."
    ),
    "baseline_mlp_better": (
        "{lead}: {diff}. On the same {n} test images only {cnn} was right on {only_a}, only "
        "{mlp} on {only_b}; exact McNemar test: {verdict}. So on this budget the baseline "
        "without convolutions was more accurate than the best convolutional network."
    ),
    "baseline_untested": "{lead}: {diff}; no paired test, {reason}.",
    "user_choice_tied": (
        "{model}: the user's own choice ({combo}) is first here by validation accuracy, but it "
        "is one of {k} combinations tied within noise, so this grid does not single it out."
    ),
    "user_choice_same": "{model}: the best combination here is the user's own choice ({combo}).",
    "user_choice": (
        "{model}: the best combination here ({ours}; {ours_test}% test) against the user's choice "
        "({theirs}; {theirs_test}% test) on the same {n} test images: only ours was right on "
        "{only_a}, only the user's choice on {only_b}; exact McNemar test: {verdict}."
    ),
    "user_choice_untested": (
        "{model}: the best combination here ({ours}; {ours_test}% test) against the user's "
        "choice ({theirs}; {theirs_test}% test): no paired test, {reason}."
    ),
    "ties": (
        "{model}: {k} combinations tie within noise on validation accuracy — {items} — all inside "
        "the best's 95% interval ({ci}% for {n} validation images). Shown as best: {shown}, {why}."
    ),
    "tie_break_val": "the highest validation accuracy of them",
    "tie_break_params": "tied exactly on validation accuracy and chosen for fewer parameters",
    "tie_break_time": "tied exactly on validation accuracy and size and chosen for the shorter running time",
    "tie_break_id": "tied exactly on validation accuracy, size and time and chosen by run id",
    "efficiency_definition": (
        "the smallest model whose best validation accuracy is not distinguishable from the top's "
        "({model}, {val}%; inside its 95% interval {ci}% for {n} validation images)"
    ),
    "efficiency_definition_points": (
        "the smallest model whose best validation accuracy is within {points} points of the top "
        "({model}, {val}%)"
    ),
    "efficiency_smaller": (
        "Most accurate per parameter, taken as {definition}: {model} with {params} parameters "
        "({times} fewer than {top}), {val}% validation and {test}% test accuracy."
    ),
    "efficiency_top_smallest": (
        "Most accurate per parameter, taken as {definition}: {model} itself, which is also the "
        "smallest model compared ({params} parameters)."
    ),
    "efficiency_top": (
        "Most accurate per parameter, taken as {definition}: {model} itself — no smaller model "
        "came that close; the best smaller one, {other} ({params} parameters, {times} fewer), "
        "reached {val}% validation ({points} points lower) and {test}% test accuracy."
    ),
    "excluded": (
        "Did not learn, so left out of rankings, fits and effects: {items}.",
        "Did not learn, so left out of rankings, fits and effects ({n} runs): {items}.",
    ),
    "excluded_near_chance": "{label} at {val}% validation accuracy, within {points} points of chance ({chance}%)",
    "excluded_below_model": (
        "{label} at {val}% validation accuracy, less than half-way from chance ({chance}%) to "
        "its model's best other run ({ref}, {ref_val}%)"
    ),
    "excluded_below_budget": (
        "{label} at {val}% validation accuracy: its model's best run got less than half-way from "
        "chance ({chance}%) to the best of the other models on this budget ({ref_model}, "
        "{ref_val}%)"
    ),
    "diverged_item": "{label} at epoch {epoch}",
    "diverged": (
        "{n} run diverged (non-finite loss): {which}.",
        "{n} runs diverged (non-finite loss): {which}.",
    ),
    "diverged_lr_item": "{n} at lr {lr}",
    "diverged_by_lr": "Diverged runs by learning rate: {counts}.",
    "failed": ("{n} run failed: {which}.", "{n} runs failed: {which}."),
    "open_item": "{n} {status}",
    "unfinished": (
        "{n} run has not finished ({tally}); it is not ranked.",
        "{n} runs have not finished ({tally}); they are not ranked.",
    ),
    "time_numbers": (
        "Pearson r = {r} ({p}) between log10(parameters) and log10(running time) over the {n} "
        "models' best runs, log-log slope {slope}"
    ),
    "time_up": (
        "Running time and parameter count rose together over these models: {numbers}. Time "
        "follows the work per image (and the device's load), not parameters as such, so this is "
        "an association, not a cause."
    ),
    "time_down": (
        "Running time fell as parameter count rose over these models: {numbers}. Time follows "
        "the work per image (and the device's load), not parameters as such."
    ),
    "time_none": "No relation between running time and parameter count is established: {numbers}.",
    "time_shared": (
        " These times were measured with up to {n} runs of this sweep training at once on the "
        "same device, so they are not the time a run takes alone."
    ),
    "factor_item": "{value}: {val}%",
    "factor_best": "{value} at {at}",
    "test_friedman": "Friedman test",
    "test_sign": "sign test",
    "factor_differs": (
        "{model}, {factor}: validation accuracy differs between the {k} values of {factor} "
        "({test} over the {n} values of {other} as blocks, {p}); median over {other}: {listing}; "
        "best {factor} at each {other}: {best}."
    ),
    "factor_same": (
        "{model}, {factor}: the {k} values of {factor} are not distinguishable on validation "
        "accuracy ({test} over the {n} values of {other} as blocks, {p}); median over {other}: "
        "{listing}; best {factor} at each {other}: {best}."
    ),
    "overfit_item": "{label} (lowest at epoch {low}, then up {rise} over {k} epochs)",
    "curves_overfit": (
        "{model}, curves of {n} run: validation loss was lowest at epoch {median} (median). "
        "{k} of them over-fitted — validation loss ended at least {rise} above its lowest while "
        "the training loss still fell: {items}. The kept epoch (best validation accuracy) was "
        "the last one in {last} of {kept} runs.",
        "{model}, curves of {n} runs: validation loss was lowest at epoch {median} (median). "
        "{k} of them over-fitted — validation loss ended at least {rise} above its lowest while "
        "the training loss still fell: {items}. The kept epoch (best validation accuracy) was "
        "the last one in {last} of {kept} runs.",
    ),
    "curves_no_overfit": (
        "{model}, curves of {n} run: validation loss was lowest at epoch {median} (median), and "
        "no run over-fitted (validation loss ending at least {rise} above its lowest while the "
        "training loss still fell). The kept epoch (best validation accuracy) was the last one "
        "in {last} of {kept} runs.",
        "{model}, curves of {n} runs: validation loss was lowest at epoch {median} (median), and "
        "no run over-fitted (validation loss ending at least {rise} above its lowest while the "
        "training loss still fell). The kept epoch (best validation accuracy) was the last one "
        "in {last} of {kept} runs.",
    ),
    "collapsed": (
        "{label} collapsed: after reaching {peak}% validation accuracy it fell to {acc}%, near "
        "chance, at epoch {epoch}; the weights kept (and tested) are those of epoch {kept}."
    ),
    "gap_item": "{model} {train}% train (eval mode) vs {val}% validation at epoch {epoch}, {points} points",
    "gap_eval": (
        "Train-validation gap of each model's best run, with training accuracy measured in eval "
        "mode (no dropout, no augmentation) on a fixed training sample as large as the "
        "validation set: {items}."
    ),
    "gap_not_recorded": (
        "These runs did not measure training accuracy in eval mode, so no train-validation gap "
        "is given: the training accuracy in the tables is a running average over each epoch with "
        "dropout on, which dropout lowers; it does not measure over-fitting."
    ),
    "error_item": "{true}→{pred} ({n})",
    "errors": (
        "The best model's errors: {model} misclassified {wrong} test images; its most frequent "
        "confusion (true→predicted) is {items}, {share} of its errors.",
        "The best model's errors: {model} misclassified {wrong} test images; its {n} most "
        "frequent confusions (true→predicted) are {items}, {share} of its errors.",
    ),
    "errors_none": "{model} misclassified no test image.",
    "user_vs_same": (
        "{model}: our best {ours}% test ({n} images) against the user's reported {theirs}% "
        "({user_n} images), by an unpaired two-proportion test (the user's per-image answers are "
        "not known): {verdict}. Our budget and the settings the user's report states (epochs, "
        "batch size, optimizer, no augmentation, constant learning rate) are the user's."
    ),
    "user_vs_differs": (
        "{model}: our best {ours}% test ({n} images) against the user's reported {theirs}% "
        "({user_n} images), by an unpaired two-proportion test (the user's per-image answers are "
        "not known): {verdict}. Our protocol differs from the user's: {differences}."
    ),
    "diff_train": "{n} of {total} training images",
    "diff_epochs": "{n} epochs instead of {user}",
    "diff_test": "{n} test images instead of {user}",
    "diff_grid": "{n} of the user's {full} lr x dropout combinations run to the end",
    "diff_setting": "{name}={ours} instead of {user}",
    "diff_params": "{ours} parameters instead of the user's {user}",
    "user_budget_same": "Our runs follow the user's protocol: full training set, 8 epochs, every one of the 12 combinations finished, 10,000 test images.",
    "unfinished_best": (
        "{model} did not finish: its runs stopped after {reached} of {planned} epochs; the best "
        "validation accuracy so far is {val}% ({label}, epoch {epoch}). It is not ranked: "
        "finished runs chose among all {planned} epochs."
    ),
    # ------------------------------------------------------------ run statuses
    "status_finished": "finished",
    "status_diverged": "diverged",
    "status_failed": "failed",
    "status_pending": "pending",
    "status_partial": "partial",
    "status_interrupted": "interrupted",
    "status_pruned": "pruned",
    "status_not_learned": "did not learn",
    "status_collapsed": "collapsed",
    # ------------------------------------------------------------ tables
    "col_model": "model",
    "col_lr": "lr",
    "col_dropout": "dropout",
    "col_seed": "seed",
    "col_val": "val acc (%)",
    "col_test": "test acc (%)",
    "col_ci": "test 95% CI (%)",
    "col_time": "time (s)",
    "col_runs": "runs (seeds)",
    "col_status": "status",
    "col_params": "params",
    "col_epochs_run": "epochs run",
    "col_best_epoch": "best epoch",
    "col_train": "train acc, running avg (%)",
    "col_train_eval": "train acc, eval mode (%)",
    "col_run": "run",
    "col_note": "note",
    "col_budget": "budget",
    "col_source": "source",
    "col_combination": "lr, dropout",
    "col_lr_dropout": "lr \\ dropout",
    "epochs_of": "{run} of {planned}",
    "best_note": (
        "Best = highest validation accuracy among finished runs that learned (mean over seeds "
        "where a combination was repeated); test accuracy is measured once on the chosen "
        "epoch's weights and never used to choose. Time is the run's total wall-clock time."
    ),
    "best_note_seeds": (
        "± is the standard deviation over the combination's runs; the best epoch and run id are "
        "those of its best run."
    ),
    "ci_note": (
        "95% CI: Wilson score interval for the number of test images the run was judged on; for "
        "a combination repeated over seeds, the t interval of the mean."
    ),
    "detail_note": "The same rows as the table above, in the same order.",
    "grid_caption": "{model}: validation / test accuracy (%)",
    "grid_note": (
        "Each cell: validation / test accuracy (%). * the combination chosen by validation "
        "accuracy; † did not learn (left out of rankings)."
    ),
    "grid_note_others": "Where {fields} also varied, each cell shows its best run by validation accuracy.",
    "grid_note_seeds": "Cells repeated over seeds show the mean.",
    "grid_note_ci": (
        "Test accuracies judged on {n} images: each has a 95% interval of about ±{half} points "
        "(e.g. {test}%: {ci}%); the table of all runs gives every run's own interval."
    ),
    "cell_diverged": "diverged",
    "cell_failed": "failed",
    "cell_pruned": "pruned",
    "cell_partial": "unfinished",
    "cell_pending": "pending",
    "cell_interrupted": "unfinished",
    "all_note": (
        "Sorted by model, then validation accuracy. Diverged and failed runs, and runs that did "
        "not learn, are kept and highlighted."
    ),
    "all_tally": "{n} runs: {tally}.",
    "note_so_far": "stopped after epoch {n} of {planned}; best validation so far {val}% at epoch {epoch}",
    "note_collapsed": "collapsed at epoch {epoch}; weights kept from epoch {kept}",
    "note_overfit": "over-fitted: validation loss lowest at epoch {low}, then up {rise} over {k} epochs",
    "note_low": "validation loss lowest at epoch {low}",
    "time_note_shared": (
        "Up to {n} runs of this sweep trained at the same time on the same device (their start "
        "and end times overlap): the times are not those of a run alone."
    ),
    "train_note": (
        "Train acc, running avg: the mean over each epoch's batches with dropout on (and "
        "augmentation, if any), which dropout lowers. Train acc, eval mode: the kept epoch's "
        "weights on a fixed training sample as large as the validation set, without dropout "
        "(— where not recorded)."
    ),
    "note_diverged": "diverged (non-finite loss) at epoch {epoch}",
    "source_user": "user's report",
    "source_ours": "this sweep (budget {letter})",
    "source_ours_one": "this sweep",
    "source_ours_none": "this sweep: no finished run that learned",
    "source_ours_so_far": "this sweep: unfinished, best validation so far (epoch {epoch} of {planned})",
    "user_note": (
        "The user's rows: 8 epochs of the full training set less their validation split, judged "
        "on all 10,000 test images; the interval is the Wilson interval for 10,000 images. "
        "Times come from different machines and are not comparable."
    ),
    "user_budget": "Where our protocol differs from the user's (accuracies not comparable as they stand): {items}.",
    "user_budget_item": "{model}: {gap}",
    # ------------------------------------------------------------ figures
    "figure_caption": "Figure {n}: {title}. {look}",
    "look_search": "Look for a searched setting along which the filled circles rise or fall.",
    "look_trials": "Look at where the bold best trial separates from the others, and where pruned trials stop.",
    "look_heatmap": "Look along a row (one learning rate) and down a column (one dropout): which changes the colour more?",
    "look_overlay": "Look at where each model's validation loss stops falling (log scale) and how close the accuracy curves end.",
    "look_acc_vs_params": "Look at whether the intervals of larger models sit above those of smaller ones; overlapping intervals mean no difference shown.",
    "look_acc_vs_time": "Look at whether the runs that took longer sit higher: overlapping intervals mean no accuracy difference is shown.",
    "look_time_vs_params": "Look at whether the points follow the fitted line; time follows the work per image, not parameters as such.",
    "look_curves": "Look for panels where validation loss turns up while training loss still falls (over-fitting) and for accuracy that falls away (a collapse); loss is on a log scale.",
    "look_confusion": "Look off the diagonal: the largest numbers there are the digits most often confused.",
    "look_gallery": "Look at whether the mistakes are digits a person would also hesitate over; they are grouped by confusion, most frequent first.",
    "fig_no_run": "no run",
    "fig_nothing": "nothing finite recorded",
    "fig_diverged": "DIVERGED at epoch {epoch}",
    "fig_not_learned": "DID NOT LEARN",
    "fig_loss": "loss",
    "fig_log_scale": "{label} (log scale)",
    "fig_accuracy": "accuracy (%)",
    "fig_epoch": "epoch",
    "fig_train": "train",
    "fig_val": "validation",
    "fig_chosen_epoch": "chosen epoch (by val acc)",
    "fig_curves_title": "Parameter combinations for {model}",
    "fig_curves_shared": "(each panel: best run by validation accuracy over {fields})",
    "fig_val_acc": "validation accuracy (%)",
    "fig_test_acc": "test accuracy (%)",
    "fig_lr": "learning rate",
    "fig_heatmap_title": "{model}: accuracy over learning rate × dropout",
    "fig_heatmap_marks": "* chosen by validation accuracy, † did not learn",
    "fig_train_faint": "train (faint, dotted)",
    "fig_val_loss": "validation loss",
    "fig_val_accuracy": "validation accuracy (%)",
    "fig_best_runs_title": "Each model's best run",
    "fig_params_log": "parameters (log scale)",
    "fig_time_log": "running time, s (log scale)",
    "fig_acc_vs_params": "Test accuracy (95% interval) vs parameters\n(best run per model, chosen by validation)",
    "fig_acc_vs_time": "Test accuracy (95% interval) vs running time\n(best run per model, chosen by validation)",
    "fig_all_runs": "all finished runs",
    "fig_fit": "log-log fit, slope {slope}",
    "fig_time_shared": " (times with up to {n} runs sharing the device)",
    "fig_time_title_fit": "Running time vs parameters: Pearson r = {r} ({p})\n(of log10 params vs log10 time, {n} models' best runs)",
    "fig_time_title": "Running time vs parameters\n(no correlation: {n} model(s), need 3)",
    "fig_predicted": "predicted",
    "fig_true": "true",
    # ------------------------------------------------------------ searches
    "h_search": "Search: accuracy against each searched setting",
    "search_intro": (
        "This sweep is a search: each trial's settings were sampled, not laid on a grid, so "
        "accuracy is drawn against each searched setting instead of an lr x dropout table. "
        "Filled circles: validation accuracy (what the search chooses by) of finished trials; "
        "crosses: their test accuracy; hollow triangles: pruned trials, at the best validation "
        "accuracy they reached, labelled with the epochs they trained — fewer than the finished "
        "trials, so not comparable with them. Panel titles give Spearman's rank correlation over "
        "the finished trials that learned."
    ),
    "h_best_trials": "Best trials",
    "col_rank": "#",
    "best_trials_note": (
        "Finished trials that learned, by validation accuracy; test accuracy is measured once "
        "and never used to choose."
    ),
    "best_trials_note_noise": (
        "≈: inside the best trial's 95% interval for {images} validation images ({ci}%), so not "
        "distinguishable from it."
    ),
    "best_trials_pruned": (
        "{n} pruned trial trained fewer epochs, so it is not ranked here; see the figures and "
        "the table of all runs.",
        "{n} pruned trials trained fewer epochs, so they are not ranked here; see the figures "
        "and the table of all runs.",
    ),
    "h_trials": "Every trial's validation curves",
    "trials_intro": (
        "Validation loss and accuracy per epoch of every trial: the best finished trial bold, "
        "pruned trials dashed up to the epoch they were stopped (cross)."
    ),
    "search_trials": ("{n} trial ({tally})", "{n} trials ({tally})"),
    "search_overview": (
        "This sweep is a search, not a grid: {trials}, their settings drawn by the {sampler} "
        "sampler from {space}; pruning: {pruner}."
    ),
    "search_overview_inferred": (
        "This sweep is a search, not a grid: {trials}. Its sweep file's [search] table could not "
        "be read, so the searched settings are taken to be those that vary: {space}."
    ),
    "search_epochs": (
        " The trials that ended trained {trained} of their {planned} planned epochs ({saved}% "
        "not trained)."
    ),
    "sampler_tpe": "TPE (Bayesian)",
    "sampler_random": "random",
    "sampler_grid": "grid (every combination, in a seeded order)",
    "pruner_median": (
        "the median pruner (a trial is stopped when its validation accuracy falls below the "
        "median of earlier trials at the same epoch)"
    ),
    "pruner_asha": (
        "the ASHA pruner (successive halving: at each rung of epochs only the best share of "
        "trials goes on)"
    ),
    "pruner_none": "none (every trial trains all its epochs)",
    "space": "{name} uniform in [{low}, {high}]",
    "space_log": "{name} log-uniform in [{low}, {high}]",
    "space_int": "{name} a whole number in [{low}, {high}]",
    "space_int_log": "{name} a whole number, log-uniform in [{low}, {high}]",
    "space_choices": "{name} one of {choices}",
    "space_observed": "{name} from {low} to {high}",
    "search_best": (
        "Best trial by validation accuracy, among finished trials only: {label} with {val}% "
        "validation and {test}% test accuracy ({ci}), at epoch {epoch} of {epochs}."
    ),
    "search_near": (
        "One other finished trial lies inside the best's 95% interval ({ci}% for {images} "
        "validation images), so the search does not tell the two apart: {items}.",
        "{n} other finished trials lie inside the best's 95% interval ({ci}% for {images} "
        "validation images), so the search does not tell them apart: {items}.",
    ),
    "search_near_more": "; and {n} more",
    "search_clear": (
        "No other finished trial lies inside the best's 95% interval ({ci}% for {images} "
        "validation images); the next best, {label}, reached {val}%."
    ),
    "trend_intro": (
        "Trends: Spearman's rank correlation between a searched setting and validation accuracy "
        "over a model's finished trials that learned (pruned trials are left out: they trained "
        "fewer epochs), given at least {least} of them; a trend is said only when the two-sided "
        "p < {alpha}{shared}. It describes these trials, in which every searched setting varied "
        "at once: it is not a controlled experiment."
    ),
    "trend_shared": " (0.05 shared among the {n} settings tested, Bonferroni)",
    "trend_up": (
        "{label}: validation accuracy rose with {setting} (Spearman ρ = {rho} over {n} finished "
        "trials, {p})."
    ),
    "trend_down": (
        "{label}: validation accuracy fell as {setting} rose (Spearman ρ = {rho} over {n} "
        "finished trials, {p})."
    ),
    "trend_none": (
        "{label}, {setting}: no clear trend (Spearman ρ = {rho} over {n} finished trials, {p})."
    ),
    "trend_few": (
        "{label}, {setting}: {n} finished trial that learned, too few to judge a trend (at "
        "least {least} needed).",
        "{label}, {setting}: {n} finished trials that learned, too few to judge a trend (at "
        "least {least} needed).",
    ),
    "trend_entangled": (
        "{label}: {a} and {b} moved together in these {n} trials (Spearman ρ = {rho}, {p}), so "
        "they cannot tell which of the two the validation accuracy followed."
    ),
    "trend_flat": (
        "{label}, {setting}: no trend can be measured: the {n} finished trials share one value "
        "of {setting} or one validation accuracy."
    ),
    "trend_choices": (
        "{label}, {setting} (unordered choices, so no trend test): best validation accuracy per "
        "choice: {items}."
    ),
    "choice_item": ("{value} {val}% ({n} trial)", "{value} {val}% ({n} trials)"),
    "choice_item_none": "{value}: no finished trial",
    "pruned": (
        "{n} trial was pruned, {items}{of}. It trained fewer epochs than the finished trials, so "
        "its accuracy is not comparable with theirs: it is left out of the best trials, the "
        "ranking and the trends, and drawn apart in the figures; how it would have ended, "
        "these runs cannot tell.",
        "{n} trials were pruned, {items}{of}. They trained fewer epochs than the finished "
        "trials, so their accuracies are not comparable with those: they are left out of the "
        "best trials, the ranking and the trends, and drawn apart in the figures; how they "
        "would have ended, these runs cannot tell.",
    ),
    "pruned_item": "{n} after epoch {epoch}",
    "pruned_of": " (of {planned} planned)",
    "pruned_none": "No trial was pruned.",
    "diff_search": "a search of {n} trials instead of the {full} lr x dropout combinations",
    "fig_setting_log": "{name} (log scale)",
    "fig_rho": "Spearman ρ = {rho} (n = {n})",
    "fig_rho_none": "ρ not computed (n = {n} finished)",
    "fig_search_title": "{label}: accuracy against each searched setting",
    "fig_search_val": "validation (finished)",
    "fig_search_test": "test (finished)",
    "fig_search_best": "best trial",
    "fig_search_pruned": "pruned: best validation before it stopped (number = epochs trained)",
    "fig_not_learned_key": "did not learn",
    "fig_search_diverged": "diverged",
    "fig_search_below": "below the axis (value written)",
    "fig_trials_title": (
        "{label}: validation curves of {n} trial",
        "{label}: validation curves of {n} trials",
    ),
    "fig_trials_finished": "finished trial",
    "fig_trials_pruned": "pruned trial (× where stopped)",
    "fig_off_axis": " (off the axis)",
}

ZH: dict[str, str | tuple[str, str]] = {
    # ------------------------------------------------------------ the document
    "html_title": "mnistlab 实验报告：{name}",
    "title": "实验报告：{name}",
    "intro": (
        "{sweep} 中共 {n} 次运行（{tally}）。本报告由 mnistlab report 仅根据实验记录生成："
        "每个数字都来自各次运行的 result.json 和 history.json。"
    ),
    "recorded_with": "运行环境：{env}。",
    "env_device": "设备",
    "env_precision": "精度",
    "env_torch": "torch",
    "env_code": "代码版本",
    "h_conclusions": "结论",
    "other_runs_heading": "未完成的运行",
    "h_best": "各模型的最佳参数组合",
    "h_user": "用户报告中的结果与本次结果对照",
    "user_intro": (
        "用户的课程报告列出了每种架构在 lr × dropout 网格（8 轮）中的最佳一次运行，下表照原文转录；"
        "本次结果是同一架构在本次实验中按验证准确率选出的最佳组合。"
    ),
    "h_grid": "lr × dropout 网格上的准确率",
    "grid_intro": "每个模型每种参数组合的验证 / 测试准确率（%）：先以表格、再以热力图展示用户的网格。",
    "grid_single": "只运行了一种 lr × dropout 组合的模型（{models}）见最佳组合表。",
    "grid_none": "没有模型运行了多于一种 lr × dropout 组合。",
    "h_overlay": "各模型最佳运行对比",
    "overlay_intro": "把每个模型最佳组合的逐轮验证损失和验证准确率画在同一张图上；训练曲线以浅色点线表示。",
    "h_size": "准确率、模型大小与运行时间",
    "size_none": "还没有完成的运行，暂无可画的图。",
    "size_one": "没有哪种预算下有两个学到东西的模型，没有可以并列比较的内容。",
    "h_curves": "各参数组合的损失曲线与准确率曲线",
    "curves_note": (
        "行：学习率，每个学习率一行损失、其下一行准确率；列：dropout。实线为训练，虚线为验证；"
        "灰色点线标出按验证准确率选中的轮次。发散的运行画到其停止处并以红色标出。"
    ),
    "curves_none": "实验记录中没有任何运行的逐轮历史（history.json），因此没有曲线。",
    "h_best_model": "最佳模型：{label}",
    "h_best_model_budget": "预算 {letter} 的最佳模型：{label}",
    "best_model_line": "运行 {run}：验证准确率 {val}%，测试准确率 {test}%（95% 置信区间 {ci}%），取自第 {epoch} 轮。",
    "confusion_title": "混淆矩阵：{model}，测试集（{n} 张图像，错 {wrong} 张）",
    "no_confusion": "该运行没有记录测试集混淆矩阵。",
    "no_gallery": "该运行没有记录被错分的测试图像。",
    "gallery_empty": "该运行没有错分任何测试图像（或未记录）。",
    "gallery_unloadable": "未生成错分图像一览：无法加载测试集（{error}）。",
    "gallery_mismatch": "未生成错分图像一览：{source} 处的测试集与运行记录不符（索引或标签不同）。",
    "gallery_title": "{model} 错分的测试图像（真实→预测），共记录 {total} 张，显示 {shown} 张",
    "h_runs": "全部运行",
    "also_as": "另存为 {links}（与本页同一文件夹）。",
    "font_note": "图中标签为英文：未找到含中文字形的字体（请安装 fonts-noto-cjk）。",
    "detail_caption": "详细信息（行顺序相同）：",
    "figure_subtitle_budget": "（预算 {letter}）",
    # ------------------------------------------------------------ budgets
    "budget_train": "{n} 张训练图像",
    "budget_train_subset": "{total} 张训练图像中的 {n} 张",
    "budget_train_unknown": "训练集",
    "budget_epochs": "{n} 轮",
    "budget_epochs_unknown": "配置的轮数",
    "budget_judged": "在 {val} 张验证图像和 {test} 张测试图像上评估",
    "budget_judged_unknown": "在完整的验证集和测试集上评估",
    "budget_label": "{train} × {epochs}，{judged}",
    "budget_title": "预算 {letter}（{models}）：{budget}",
    "budget_part": "{letter}：{models}，{budget}",
    "mixed_budgets": (
        "本次实验混合了 {n} 种预算，各次运行的训练和评估条件并不相同。模型只在同一预算内排名、拟合和比较，"
        "不跨预算比较：{parts}。"
    ),
    "budget_note": "训练与评估条件：{budget}。",
    # ------------------------------------------------------------ conclusions
    "no_runs": "本次实验还没有任何运行记录，无从比较。",
    "no_finished": "没有运行完成，因此还没有最佳模型（已记录 {n} 次运行）。",
    "no_usable": "该预算下没有完成且学到东西的运行，因此不做排名。",
    "default_settings": "默认设置",
    "stop": "。",
    "times": "{x} 倍",
    "ci_wilson": "95% 置信区间 {ci}%，{n} 张测试图像",
    "ci_seeds": "均值的 95% t 区间 {ci}%，n={n}",
    "best_model": (
        "按验证准确率的最佳模型：{label}，验证准确率 {val}，测试准确率 {test}"
        "（{ci}；参数量 {params}，用时 {seconds} 秒）。"
    ),
    "best_model_tied": (
        "验证准确率最高：{label}，验证准确率 {val}，测试准确率 {test}（{ci}；参数量 {params}，用时 {seconds} 秒）；"
        "{others} 与它在噪声范围内持平，因此不能确定唯一的最佳模型。"
    ),
    "best_model_tie": "{model} 排在 {others} 之前：{why}。",
    "test_higher": (
        "按测试准确率，{model} 的最佳组合更高（{a}% 对 {b}%），但用测试集做选择会使估计产生偏差，"
        "因此排名使用验证准确率。"
    ),
    "test_higher_paired": (
        "按测试准确率，{model} 的最佳组合更高（{a}% 对 {b}%；在同样的 {n} 张测试图像上，精确 McNemar 检验："
        "{verdict}），但用测试集做选择会使估计产生偏差，因此排名使用验证准确率。"
    ),
    "rank_item": "{model} {val}%",
    "rank_item_tied": "{model} {val}%（在噪声范围内与第一名持平）",
    "ranking": "各模型最佳组合的验证准确率：{items}",
    "ranking_noise": "；持平指落在第一名 {n} 张验证图像的 95% 置信区间（{ci}%）之内，它们之间的先后并不确定",
    "runner_up": (
        "{a}（测试 {a_test}%）与第二名 {b}（测试 {b_test}%）在同样的 {n} 张测试图像上比较："
        "只有 {a} 答对的有 {only_a} 张，只有 {b} 答对的有 {only_b} 张；精确 McNemar 检验：{verdict}。"
    ),
    "runner_up_untested": "{a}（测试 {a_test}%）与第二名 {b}（测试 {b_test}%）：未做配对检验，{reason}。",
    "untested_no_predictions": "因为两次运行没有都记录逐图像的测试预测",
    "untested_different_images": "因为两者评估所用的测试图像不同",
    "significant": "差异显著（{p}）",
    "indistinguishable": "两者无法区分（{p}）",
    "ci_only": "95% 置信区间 {ci}%",
    "with_ci": "{acc}（{ci}）",
    "baseline_lead": (
        "卷积与无卷积的对比：{mlp} 是不含卷积的多层感知机基线，测试准确率 {mlp_acc}；"
        "按验证准确率最好的卷积网络 {cnn} 为 {cnn_acc}"
    ),
    "baseline_diff": "{model} 高 {points} 个百分点",
    "baseline_diff_none": "两者准确率相同",
    "baseline_cnn_better": (
        "{lead}，{diff}。在同样的 {n} 张测试图像上，只有 {cnn} 答对的有 {only_a} 张，只有 {mlp} 答对的有 "
        "{only_b} 张；精确 McNemar 检验：{verdict}。因此在这一预算下 {cnn} 更准确，{mlp} 准确率较低正是基线应有的"
        "结果，并非训练失败；两者的差别远不止卷积（深度、宽度、归一化、参数量），因此这个差距并不是卷积本身带来的。"
    ),
    "baseline_level": (
        "{lead}，{diff}。在同样的 {n} 张测试图像上，只有 {cnn} 答对的有 {only_a} 张，只有 {mlp} 答对的有 "
        "{only_b} 张；精确 McNemar 检验：{verdict}。因此就这些测试图像所能说明的而言，在这一预算下不含卷积的"
        "基线与最好的卷积网络一样准确。"
    ),
    "baseline_mlp_better": (
        "{lead}，{diff}。在同样的 {n} 张测试图像上，只有 {cnn} 答对的有 {only_a} 张，只有 {mlp} 答对的有 "
        "{only_b} 张；精确 McNemar 检验：{verdict}。因此在这一预算下不含卷积的基线比最好的卷积网络更准确。"
    ),
    "baseline_untested": "{lead}，{diff}；未做配对检验，{reason}。",
    "user_choice_tied": "{model}：用户自己选的组合（{combo}）在这里按验证准确率排第一，但它与另外的组合共 {k} 种在噪声范围内持平，因此这个网格并不能单独选出它。",
    "user_choice_same": "{model}：本次的最佳组合正是用户自己选的组合（{combo}）。",
    "user_choice": (
        "{model}：本次最佳组合（{ours}；测试 {ours_test}%）与用户所选组合（{theirs}；测试 {theirs_test}%）"
        "在同样的 {n} 张测试图像上比较：只有前者答对的有 {only_a} 张，只有用户所选组合答对的有 {only_b} 张；"
        "精确 McNemar 检验：{verdict}。"
    ),
    "user_choice_untested": (
        "{model}：本次最佳组合（{ours}；测试 {ours_test}%）与用户所选组合（{theirs}；测试 {theirs_test}%）："
        "未做配对检验，{reason}。"
    ),
    "ties": (
        "{model}：有 {k} 种组合的验证准确率在噪声范围内持平——{items}——都落在最佳组合的 95% 置信区间内"
        "（{n} 张验证图像，{ci}%）。作为最佳显示的是 {shown}，理由：{why}。"
    ),
    "tie_break_val": "它的验证准确率在其中最高",
    "tie_break_params": "验证准确率完全相同，参数更少",
    "tie_break_time": "验证准确率和参数量完全相同，运行时间更短",
    "tie_break_id": "验证准确率、参数量和时间完全相同，按运行 ID 选取",
    "efficiency_definition": (
        "最佳验证准确率与第一名（{model}，{val}%）无法区分（落在其 {n} 张验证图像的 95% 置信区间 {ci}% 之内）的最小模型"
    ),
    "efficiency_definition_points": "最佳验证准确率与第一名（{model}，{val}%）相差不超过 {points} 个百分点的最小模型",
    "efficiency_smaller": (
        "按参数计最高效的模型（定义为{definition}）：{model}，参数量 {params}（比 {top} 少 {times}），"
        "验证准确率 {val}%，测试准确率 {test}%。"
    ),
    "efficiency_top_smallest": "按参数计最高效的模型（定义为{definition}）：{model} 本身，它也是参与比较的最小模型（参数量 {params}）。",
    "efficiency_top": (
        "按参数计最高效的模型（定义为{definition}）：{model} 本身——没有更小的模型达到这么接近；"
        "更小的模型中最好的是 {other}（参数量 {params}，少 {times}），验证准确率 {val}%（低 {points} 个百分点），"
        "测试准确率 {test}%。"
    ),
    "excluded": "以下运行没有学到东西，因此不参与排名、拟合和效应分析（{n} 次）：{items}。",
    "excluded_near_chance": "{label}，验证准确率 {val}%，与随机猜测（{chance}%）相差不到 {points} 个百分点",
    "excluded_below_model": "{label}，验证准确率 {val}%，从随机猜测（{chance}%）到同一模型其他最佳运行（{ref}，{ref_val}%）还没走到一半",
    "excluded_below_budget": (
        "{label}，验证准确率 {val}%：该模型的最佳运行从随机猜测（{chance}%）到同一预算下其他模型的最佳运行"
        "（{ref_model}，{ref_val}%）还没走到一半"
    ),
    "diverged_item": "{label} 在第 {epoch} 轮",
    "diverged": "{n} 次运行发散（损失出现非有限值）：{which}。",
    "diverged_lr_item": "lr {lr} 时 {n} 次",
    "diverged_by_lr": "按学习率统计的发散运行：{counts}。",
    "failed": "{n} 次运行失败：{which}。",
    "open_item": "{status} {n} 次",
    "unfinished": "{n} 次运行尚未完成（{tally}），不参与排名。",
    "time_numbers": "在 {n} 个模型的最佳运行上，log10(参数量) 与 log10(运行时间) 的 Pearson r = {r}（{p}），双对数斜率 {slope}",
    "time_up": "在这些模型上运行时间与参数量同时增大：{numbers}。时间取决于每张图像的计算量（以及设备的负载），而不是参数量本身，因此这只是相关，不是因果。",
    "time_down": "在这些模型上参数量越大，运行时间反而越短：{numbers}。时间取决于每张图像的计算量（以及设备的负载），而不是参数量本身。",
    "time_none": "运行时间与参数量之间的关系未能确认：{numbers}。",
    "time_shared": "这些时间是在本次实验最多 {n} 次运行同时在同一设备上训练时测得的，不是单独运行一次所需的时间。",
    "factor_item": "{value}：{val}%",
    "factor_best": "{at} 时为 {value}",
    "test_friedman": "Friedman 检验",
    "test_sign": "符号检验",
    "factor_differs": (
        "{model}，{factor}：{factor} 的 {k} 个取值之间验证准确率有差异（以 {other} 的 {n} 个取值为区组做{test}，{p}）；"
        "按 {other} 取中位数：{listing}；每个 {other} 下最好的 {factor}：{best}。"
    ),
    "factor_same": (
        "{model}，{factor}：{factor} 的 {k} 个取值在验证准确率上无法区分（以 {other} 的 {n} 个取值为区组做{test}，{p}）；"
        "按 {other} 取中位数：{listing}；每个 {other} 下最好的 {factor}：{best}。"
    ),
    "overfit_item": "{label}（第 {low} 轮最低，之后 {k} 轮上升 {rise}）",
    "curves_overfit": (
        "{model}，{n} 次运行的曲线：验证损失在第 {median} 轮（中位数）降到最低。其中 {k} 次出现过拟合——"
        "训练损失仍在下降，验证损失最终比其最低点高出至少 {rise}：{items}。保留的轮次（验证准确率最高）"
        "在 {kept} 次运行中有 {last} 次是最后一轮。"
    ),
    "curves_no_overfit": (
        "{model}，{n} 次运行的曲线：验证损失在第 {median} 轮（中位数）降到最低，没有运行出现过拟合"
        "（训练损失仍在下降而验证损失最终比其最低点高出至少 {rise}）。保留的轮次（验证准确率最高）"
        "在 {kept} 次运行中有 {last} 次是最后一轮。"
    ),
    "collapsed": "{label} 崩溃：验证准确率达到 {peak}% 之后，在第 {epoch} 轮跌到 {acc}%，接近随机猜测；保留（并用于测试）的是第 {kept} 轮的权重。",
    "gap_item": "{model} 第 {epoch} 轮训练 {train}%（评估模式）对验证 {val}%，相差 {points} 个百分点",
    "gap_eval": "各模型最佳运行的训练-验证差距，训练准确率在评估模式下（无 dropout、无数据增强）于与验证集同样大小的固定训练样本上测得：{items}。",
    "gap_not_recorded": "这些运行没有在评估模式下测量训练准确率，因此不给出训练-验证差距：表中的训练准确率是每轮在 dropout 开启时的滑动平均，dropout 会压低它，它并不能衡量过拟合。",
    "error_item": "{true}→{pred}（{n}）",
    "errors": "最佳模型的错误：{model} 错分了 {wrong} 张测试图像；最常见的 {n} 种混淆（真实→预测）为 {items}，占其错误的 {share}。",
    "errors_none": "{model} 没有错分任何测试图像。",
    "user_vs_same": (
        "{model}：本次最佳测试准确率 {ours}%（{n} 张图像）与用户报告的 {theirs}%（{user_n} 张图像）比较，"
        "用非配对的两比例检验（用户逐图像的结果未知）：{verdict}。本次的预算以及用户报告中写明的设置（轮数、批大小、优化器、无数据增强、恒定学习率）与用户相同。"
    ),
    "user_vs_differs": (
        "{model}：本次最佳测试准确率 {ours}%（{n} 张图像）与用户报告的 {theirs}%（{user_n} 张图像）比较，"
        "用非配对的两比例检验（用户逐图像的结果未知）：{verdict}。本次的实验设置与用户不同：{differences}。"
    ),
    "diff_train": "{total} 张训练图像中的 {n} 张",
    "diff_epochs": "{n} 轮而不是 {user} 轮",
    "diff_test": "{n} 张测试图像而不是 {user} 张",
    "diff_grid": "用户的 {full} 种 lr × dropout 组合中完整运行了 {n} 种",
    "diff_setting": "{name}={ours} 而不是 {user}",
    "diff_params": "参数量 {ours} 而不是用户的 {user}",
    "user_budget_same": "本次运行遵循用户的实验设置：完整训练集、8 轮、12 种组合全部完成、10,000 张测试图像。",
    "unfinished_best": (
        "{model} 没有完成：其运行在 {planned} 轮中训练到第 {reached} 轮就停止了；目前最好的验证准确率为 {val}%"
        "（{label}，第 {epoch} 轮）。它不参与排名：完成的运行是在全部 {planned} 轮中选出的。"
    ),
    # ------------------------------------------------------------ run statuses
    "status_finished": "已完成",
    "status_diverged": "发散",
    "status_failed": "失败",
    "status_pending": "待运行",
    "status_partial": "部分完成",
    "status_interrupted": "被中断",
    "status_pruned": "被提前终止",
    "status_not_learned": "未学到",
    "status_collapsed": "崩溃",
    # ------------------------------------------------------------ tables
    "col_model": "模型",
    "col_lr": "学习率",
    "col_dropout": "dropout",
    "col_seed": "随机种子",
    "col_val": "验证准确率 (%)",
    "col_test": "测试准确率 (%)",
    "col_ci": "测试 95% 置信区间 (%)",
    "col_time": "时间 (秒)",
    "col_runs": "运行次数（种子）",
    "col_status": "状态",
    "col_params": "参数量",
    "col_epochs_run": "已训练轮数",
    "col_best_epoch": "最佳轮次",
    "col_train": "训练准确率，滑动平均 (%)",
    "col_train_eval": "训练准确率，评估模式 (%)",
    "col_run": "运行 ID",
    "col_note": "备注",
    "col_budget": "预算",
    "col_source": "来源",
    "col_combination": "学习率, dropout",
    "col_lr_dropout": "学习率 \\ dropout",
    "epochs_of": "{run} / {planned}",
    "best_note": (
        "最佳 = 完成且学到东西的运行中验证准确率最高者（同一组合重复多个种子时取均值）；测试准确率只在选中轮次的权重上"
        "测一次，从不用于选择。时间为该运行的总耗时。"
    ),
    "best_note_seeds": "± 为该组合各次运行的标准差；最佳轮次和运行 ID 取自其中最好的一次。",
    "ci_note": "95% 置信区间：按该运行所用测试图像数计算的 Wilson 区间；同一组合重复多个种子时为均值的 t 区间。",
    "detail_note": "行与上表相同，顺序一致。",
    "grid_caption": "{model}：验证 / 测试准确率 (%)",
    "grid_note": "每格：验证 / 测试准确率（%）。* 为按验证准确率选中的组合；† 为未学到（不参与排名）。",
    "grid_note_others": "{fields} 也有变化时，每格显示其中验证准确率最高的运行。",
    "grid_note_seeds": "重复多个种子的格子显示均值。",
    "grid_note_ci": "测试准确率在 {n} 张图像上评估：每个值的 95% 置信区间约为 ±{half} 个百分点（例如 {test}%：{ci}%）；每次运行各自的区间见全部运行表。",
    "cell_diverged": "发散",
    "cell_failed": "失败",
    "cell_pruned": "被提前终止",
    "cell_partial": "未完成",
    "cell_pending": "待运行",
    "cell_interrupted": "未完成",
    "all_note": "按模型、再按验证准确率排序。发散、失败和未学到的运行均保留并高亮显示。",
    "all_tally": "共 {n} 次运行：{tally}。",
    "note_so_far": "在第 {n} 轮（共 {planned} 轮）后停止；目前最好的验证准确率为第 {epoch} 轮的 {val}%",
    "note_collapsed": "第 {epoch} 轮崩溃；保留第 {kept} 轮的权重",
    "note_overfit": "过拟合：验证损失在第 {low} 轮最低，之后 {k} 轮上升 {rise}",
    "note_low": "验证损失在第 {low} 轮最低",
    "time_note_shared": "本次实验最多有 {n} 次运行同时在同一设备上训练（起止时间重叠）：这些时间不是单独运行的时间。",
    "train_note": (
        "训练准确率（滑动平均）：每轮各批次在 dropout 开启（以及数据增强，如有）时的平均值，dropout 会压低它。"
        "训练准确率（评估模式）：保留轮次的权重在与验证集同样大小的固定训练样本上、不用 dropout 测得（未记录时为 —）。"
    ),
    "note_diverged": "第 {epoch} 轮发散（损失非有限值）",
    "source_user": "用户报告",
    "source_ours": "本次实验（预算 {letter}）",
    "source_ours_one": "本次实验",
    "source_ours_none": "本次实验：没有完成且学到东西的运行",
    "source_ours_so_far": "本次实验：未完成，目前最好的验证准确率（第 {epoch} 轮，共 {planned} 轮）",
    "user_note": (
        "用户的结果：在去掉其验证集后的完整训练集上训练 8 轮，在全部 10,000 张测试图像上评估；区间为 10,000 张图像的 "
        "Wilson 区间。运行时间来自不同的机器，不可比较。"
    ),
    "user_budget": "本次实验设置与用户不同之处（准确率不能直接比较）：{items}。",
    "user_budget_item": "{model}：{gap}",
    # ------------------------------------------------------------ figures
    "figure_caption": "图 {n}：{title}。{look}",
    "look_search": "看实心圆是否随某个搜索参数上升或下降。",
    "look_trials": "看最佳试验（粗线）从何处与其他试验分开，以及被提前终止的试验停在何处。",
    "look_heatmap": "沿一行（一个学习率）和沿一列（一个 dropout）看：哪个方向颜色变化更大？",
    "look_overlay": "看各模型的验证损失在何处不再下降（对数坐标），以及准确率曲线最终相差多少。",
    "look_acc_vs_params": "看较大模型的区间是否高于较小模型的区间；区间重叠表示没有显示出差别。",
    "look_acc_vs_time": "看用时更长的运行是否更高：区间重叠表示没有显示出准确率的差别。",
    "look_time_vs_params": "看各点是否落在拟合线上；时间取决于每张图像的计算量，而不是参数量本身。",
    "look_curves": "找验证损失回升而训练损失仍在下降（过拟合）的小图，以及准确率骤降（崩溃）的小图；损失为对数坐标。",
    "look_confusion": "看对角线以外：其中最大的数字就是最常被混淆的数字。",
    "look_gallery": "看这些错误是否连人也会犹豫；按混淆类型分组，最常见的在前。",
    "fig_no_run": "无运行",
    "fig_nothing": "没有有限的记录值",
    "fig_diverged": "第 {epoch} 轮发散",
    "fig_not_learned": "未学到",
    "fig_loss": "损失",
    "fig_log_scale": "{label}（对数坐标）",
    "fig_accuracy": "准确率 (%)",
    "fig_epoch": "轮次",
    "fig_train": "训练",
    "fig_val": "验证",
    "fig_chosen_epoch": "选中的轮次（按验证准确率）",
    "fig_curves_title": "{model} 的各参数组合",
    "fig_curves_shared": "（每格：在 {fields} 上按验证准确率最好的运行）",
    "fig_val_acc": "验证准确率 (%)",
    "fig_test_acc": "测试准确率 (%)",
    "fig_lr": "学习率",
    "fig_heatmap_title": "{model}：不同学习率 × dropout 下的准确率",
    "fig_heatmap_marks": "* 按验证准确率选中，† 未学到",
    "fig_train_faint": "训练（浅色点线）",
    "fig_val_loss": "验证损失",
    "fig_val_accuracy": "验证准确率 (%)",
    "fig_best_runs_title": "各模型的最佳运行",
    "fig_params_log": "参数量（对数坐标）",
    "fig_time_log": "运行时间，秒（对数坐标）",
    "fig_acc_vs_params": "测试准确率（95% 区间）与参数量\n（每个模型按验证准确率选出的最佳运行）",
    "fig_acc_vs_time": "测试准确率（95% 区间）与运行时间\n（每个模型按验证准确率选出的最佳运行）",
    "fig_all_runs": "全部完成的运行",
    "fig_fit": "双对数拟合，斜率 {slope}",
    "fig_time_shared": "（最多 {n} 次运行同时共用设备时的时间）",
    "fig_time_title_fit": "运行时间与参数量：Pearson r = {r}（{p}）\n（log10 参数量与 log10 时间，{n} 个模型的最佳运行）",
    "fig_time_title": "运行时间与参数量\n（无相关性分析：{n} 个模型，至少需要 3 个）",
    "fig_predicted": "预测",
    "fig_true": "真实",
    # ------------------------------------------------------------ searches
    "h_search": "搜索：准确率与各搜索参数的关系",
    "search_intro": (
        "本次实验是一次搜索：每次试验的参数是采样得到的，并没有排成网格，因此这里画出准确率与每个被搜索参数的关系，"
        "而不是 lr × dropout 表格。实心圆：已完成试验的验证准确率（搜索据此选择）；十字：它们的测试准确率；"
        "空心三角：被提前终止的试验，位置为其达到的最佳验证准确率，旁边的数字是它训练的轮数——少于已完成的试验，"
        "因此不能与之比较。各小图标题给出在学到东西的已完成试验上计算的 Spearman 秩相关系数。"
    ),
    "h_best_trials": "最佳试验",
    "col_rank": "名次",
    "best_trials_note": "学到东西的已完成试验，按验证准确率排序；测试准确率只测一次，从不用于选择。",
    "best_trials_note_noise": "≈：落在最佳试验 {images} 张验证图像的 95% 置信区间（{ci}%）之内，与之无法区分。",
    "best_trials_pruned": "{n} 次被提前终止的试验训练轮数更少，因此不在此排名；见图和全部运行表。",
    "h_trials": "每次试验的验证曲线",
    "trials_intro": "每次试验逐轮的验证损失和验证准确率：最佳的已完成试验以粗线表示，被提前终止的试验以虚线画到其停止的轮次（叉号）。",
    "search_trials": "{n} 次试验（{tally}）",
    "search_overview": (
        "本次实验是一次搜索而不是网格：{trials}，其参数由{sampler}采样器抽取（{space}）；剪枝：{pruner}。"
    ),
    "search_overview_inferred": (
        "本次实验是一次搜索而不是网格：{trials}。其实验文件中的 [search] 表已无法读取，"
        "因此把有变化的参数视为被搜索的参数：{space}。"
    ),
    "search_epochs": "已结束的试验共训练 {trained} 轮，原计划 {planned} 轮（{saved}% 未训练）。",
    "sampler_tpe": " TPE（贝叶斯）",
    "sampler_random": "随机",
    "sampler_grid": "网格（全部组合，按固定种子的顺序）",
    "pruner_median": "中位数剪枝器（某轮验证准确率低于先前试验同一轮的中位数时即停止该试验）",
    "pruner_asha": "ASHA 剪枝器（连续减半：每一级轮次只让最好的一部分试验继续）",
    "pruner_none": "无（每次试验都训练完全部轮数）",
    "space": "{name} 在 [{low}, {high}] 上均匀分布",
    "space_log": "{name} 在 [{low}, {high}] 上对数均匀分布",
    "space_int": "{name} 取 [{low}, {high}] 中的整数",
    "space_int_log": "{name} 取 [{low}, {high}] 中的整数（对数均匀）",
    "space_choices": "{name} 取 {choices} 之一",
    "space_observed": "{name} 从 {low} 到 {high}",
    "search_best": (
        "按验证准确率（只在已完成的试验中）的最佳试验：{label}，验证准确率 {val}%，测试准确率 {test}%"
        "（{ci}），取自第 {epoch} 轮（共 {epochs} 轮）。"
    ),
    "search_near": (
        "另有 {n} 次已完成的试验落在最佳试验的 95% 置信区间内（{images} 张验证图像，{ci}%），"
        "搜索无法区分它们：{items}。"
    ),
    "search_near_more": "；另有 {n} 次",
    "search_clear": (
        "没有其他已完成的试验落在最佳试验的 95% 置信区间内（{images} 张验证图像，{ci}%）；"
        "次佳的 {label} 为 {val}%。"
    ),
    "trend_intro": (
        "趋势：在某个模型学到东西的已完成试验上（被提前终止的试验训练轮数更少，不计入），计算被搜索参数与验证准确率的 "
        "Spearman 秩相关，至少需要 {least} 次试验；只有双侧 p < {alpha}{shared} 时才称为趋势。它描述的是这些试验，"
        "其中所有被搜索的参数同时在变化，并非受控实验。"
    ),
    "trend_shared": "（0.05 由所检验的 {n} 个参数分摊，Bonferroni 校正）",
    "trend_up": "{label}：验证准确率随 {setting} 增大而上升（在 {n} 次已完成试验上 Spearman ρ = {rho}，{p}）。",
    "trend_down": "{label}：验证准确率随 {setting} 增大而下降（在 {n} 次已完成试验上 Spearman ρ = {rho}，{p}）。",
    "trend_none": "{label}，{setting}：没有明显趋势（在 {n} 次已完成试验上 Spearman ρ = {rho}，{p}）。",
    "trend_few": "{label}，{setting}：学到东西的已完成试验只有 {n} 次，太少，无法判断趋势（至少需要 {least} 次）。",
    "trend_entangled": "{label}：在这 {n} 次试验中 {a} 与 {b} 同步变化（Spearman ρ = {rho}，{p}），因此无法判断验证准确率随的是两者中的哪一个。",
    "trend_flat": "{label}，{setting}：无法度量趋势：这 {n} 次已完成试验的 {setting} 取值相同或验证准确率相同。",
    "trend_choices": "{label}，{setting}（无序的选项，不做趋势检验）：各选项已完成试验的最佳验证准确率：{items}。",
    "choice_item": "{value} {val}%（{n} 次试验）",
    "choice_item_none": "{value}：没有已完成的试验",
    "pruned": (
        "{n} 次试验被提前终止：{items}{of}。它们训练的轮数少于已完成的试验，准确率不能与之比较："
        "不参与最佳试验、排名和趋势分析，在图中单独标出；它们若训练完会怎样，这些运行无法说明。"
    ),
    "pruned_item": "第 {epoch} 轮后 {n} 次",
    "pruned_of": "（原计划 {planned} 轮）",
    "pruned_none": "没有试验被提前终止。",
    "diff_search": "{n} 次搜索试验而不是 {full} 种 lr × dropout 组合",
    "fig_setting_log": "{name}（对数坐标）",
    "fig_rho": "Spearman ρ = {rho}（n = {n}）",
    "fig_rho_none": "未计算 ρ（已完成 {n} 次）",
    "fig_search_title": "{label}：准确率与各搜索参数",
    "fig_search_val": "验证（已完成）",
    "fig_search_test": "测试（已完成）",
    "fig_search_best": "最佳试验",
    "fig_search_pruned": "被提前终止：停止前的最佳验证准确率（数字为训练轮数）",
    "fig_not_learned_key": "未学到",
    "fig_search_diverged": "发散",
    "fig_search_below": "低于坐标轴（标出数值）",
    "fig_trials_title": "{label}：{n} 次试验的验证曲线",
    "fig_trials_finished": "已完成的试验",
    "fig_trials_pruned": "被提前终止的试验（× 为停止处）",
    "fig_off_axis": "（超出坐标轴）",
}

CATALOGUES = {"en": EN, "zh": ZH}
SEPARATORS = {"en": (", ", "; "), "zh": ("、", "；")}


def placeholders(template: str | tuple[str, str]) -> set[str]:
    texts = template if isinstance(template, tuple) else (template,)
    return {name for text in texts for _, name, _, _ in string.Formatter().parse(text) if name}


class Tr:
    """A language's catalogue as a callable: tr(key, **values) -> text."""

    def __init__(self, lang: str = "en"):
        if lang not in CATALOGUES:
            raise UserError(f"unknown report language {lang!r}; valid: {', '.join(LANGUAGES)}")
        self.lang = lang
        self.strings = CATALOGUES[lang]

    def __call__(self, key: str, **values) -> str:
        template = self.strings[key]
        if isinstance(template, tuple):
            template = template[0] if values.get("n") == 1 else template[1]
        return template.format(**values)

    def raw(self, key: str) -> str:
        """The template itself, for a renderer that fills it in (e.g. with escaped HTML)."""
        template = self.strings[key]
        return template if isinstance(template, str) else template[1]

    def join(self, items, strong: bool = False) -> str:
        """A list in running text; `strong` for items that contain commas themselves."""
        return SEPARATORS[self.lang][1 if strong else 0].join(str(i) for i in items)
