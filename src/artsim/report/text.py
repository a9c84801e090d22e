"""The words of reports, comparisons and sweeps, in English and Spanish.

Every sentence is a whole template per language (``str.format`` fields), not a key glued to
fragments: word order, agreement and punctuation differ between the languages, so each sentence
is written once in each, by hand. :func:`say` fills one; :func:`label` names a figure.
"""

from __future__ import annotations

import math
from typing import Any

LANGS = ("en", "es")

# --- sentence templates --------------------------------------------------------------------------

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        # headings
        "title": "Training report: {run}",
        "compare_title": "Comparison of runs",
        "sweep_title": "Split sweep: {data}",
        "h_summary": "Summary",
        "h_figures": "Main figures",
        "h_curves": "Learning curves",
        "h_stop": "Why training stopped",
        "h_modalities": "Performance by modality",
        "h_cross": "Image to text and text to image",
        "h_gap": "Training versus validation",
        "h_retrieval": "Retrieval: finding the original of a generated work",
        "h_verification": "Is it derived? A yes/no test",
        "h_distributions": "Scores of matching and non-matching pairs",
        "h_roc": "ROC curves",
        "h_gallery": "Examples: queries and their five closest originals",
        "h_noise": "How far to trust these figures",
        "h_recommendations": "Recommendations",
        "h_conclusion": "Conclusion",
        "h_verdicts": "Verdicts",
        "h_runs": "Runs",
        # run overview
        "overview": (
            "Model {model_id} was trained on {data} with {train_items} items ({train_groups} "
            "original works) for training and {val_items} items ({val_groups} original works) "
            "for validation, using the {image_tower} image tower and the {text_tower} text tower."
        ),
        "overview_split": (
            "The split keeps every original and all its generated derivatives on the same side, "
            "so validation measures similarity to unseen works rather than memory."
        ),
        # why training stopped
        "stop_early_stopping": (
            "Training ran for {epochs} epochs and was stopped by early stopping: the validation "
            "loss had stopped improving. The best validation loss, {best_loss}, was reached at "
            "epoch {best_epoch}."
        ),
        "stop_max_epochs": (
            "Training used all {epochs} epochs it was allowed (the epoch limit). The best "
            "validation loss, {best_loss}, was reached at epoch {best_epoch}."
        ),
        "stop_still_improving": (
            "The validation loss was still improving in the last epoch, so a longer run is likely "
            "to help."
        ),
        "stop_nan_loss": (
            "Training stopped after {epochs} epochs because the loss became NaN (not a number); "
            "the model kept is the last good one, whose best validation loss was {best_loss}, at "
            "epoch {best_epoch}."
        ),
        "stop_other": (
            "Training ran for {epochs} epochs and ended for the reason “{reason}”. The best "
            "validation loss, {best_loss}, was reached at epoch {best_epoch}."
        ),
        "lr_reduced": (
            "The learning rate was reduced {times} times when the validation loss reached a "
            "plateau, from {first} to {final}."
        ),
        "lr_reduced_once": (
            "The learning rate was reduced once when the validation loss reached a plateau, from "
            "{first} to {final}."
        ),
        "lr_constant": "The learning rate stayed at {final} for the whole run.",
        "lr_final_only": "The final learning rate was {final}.",
        # modalities
        "modality_ranking": (
            "By validation loss, the strongest modality is {first} ({first_value}), followed by "
            "{second} ({second_value}); the weakest is {third} ({third_value})."
        ),
        "modality_accuracy": (
            "Validation triplet accuracies: image {image}, text {text}, cross-modal {cross}."
        ),
        "retrieval_ranking": (
            "In retrieval on the validation queries, recall@1 ranks the tasks as follows: {ranking}."
        ),
        "retrieval_ranking_agrees": (
            "Retrieval agrees with the losses about the strongest single modality."
        ),
        "retrieval_ranking_disagrees": (
            "Retrieval does not agree with the losses: by recall@1 the strongest single-modality "
            "task is {best}, not {loss_best}."
        ),
        # i2t / t2i
        "cross_t2i_higher": (
            "Text-to-image accuracy ({t2i}) is higher than image-to-text accuracy ({i2t}), by "
            "{points} points: finding the right original image from a prompt is easier for the "
            "model than finding the right caption from a generated image."
        ),
        "cross_i2t_higher": (
            "Image-to-text accuracy ({i2t}) is higher than text-to-image accuracy ({t2i}), by "
            "{points} points: finding the right caption from a generated image is easier for the "
            "model than finding the right original image from a prompt."
        ),
        "cross_equal": (
            "Image-to-text ({i2t}) and text-to-image ({t2i}) accuracies are practically the same."
        ),
        "cross_retrieval": (
            "In retrieval, recall@1 is {i2t_r1} for image to text and {t2i_r1} for text to image."
        ),
        # train / val gap
        "gap_figures": (
            "In the final epoch, the training loss is {train_loss} and the validation loss "
            "{val_loss}; training triplet accuracy is {train_acc} against {val_acc} in validation."
        ),
        "gap_large": (
            "The gap is large (the validation loss is {ratio} times the training loss): this is a "
            "clear sign of over-fitting, the model fits the training works better than it "
            "generalises to new ones."
        ),
        "gap_moderate": (
            "The gap is moderate (the validation loss is {ratio} times the training loss): there "
            "is some over-fitting, but not enough to distrust the validation figures."
        ),
        "gap_small": (
            "The gap is small: there is no sign of over-fitting, the model does about as well on "
            "works it has not seen as on those it trained on."
        ),
        "gap_inverted": (
            "The validation loss is below the training loss. This is not over-fitting: dropout "
            "and the harder, mined triplets of training make the training figure pessimistic."
        ),
        "gap_rising": (
            "The validation loss rose by {rise} after its best epoch while training went on, "
            "another sign of over-fitting; the model saved is the best one, not the last."
        ),
        # retrieval
        "retrieval_summary": (
            "Each of the {queries} generated works of the validation set was used as a query "
            "against the {gallery} originals. Combining image and prompt (fused), the right "
            "original comes first {r1} of the time and within the first five {r5}; the mean "
            "reciprocal rank is {mrr}. Picking at random would give {chance}."
        ),
        "retrieval_summary_task": (
            "Each of the {queries} generated works of the validation set was used as a query "
            "against the {gallery} originals. With {task}, the right original comes first {r1} "
            "of the time and within the first five {r5}; the mean reciprocal rank is {mrr}. "
            "Picking at random would give {chance}."
        ),
        "baseline_figures": (
            "On the same queries, image to image: the perceptual-hash baseline reaches recall@1 "
            "{phash}, the frozen image-tower features {frozen} and the trained model {model}."
        ),
        "baseline_beaten": "The trained heads clearly improve on both baselines.",
        "baseline_not_frozen": (
            "The trained model does not beat the frozen tower features: on this data the "
            "projection heads add nothing to image retrieval yet."
        ),
        "baseline_not_phash": (
            "The trained model does not beat a perceptual hash: the generated works here are close "
            "copies that a hash already finds."
        ),
        "baseline_tie": (
            "The trained model is level with the best baseline, within two points of recall@1."
        ),
        "baseline_text": (
            "Text to text: frozen text-tower features reach recall@1 {frozen}, the trained model "
            "{model}."
        ),
        "easy_triplets": (
            "The validation triplet accuracy ({acc}) looks almost perfect, yet only {r1} of the "
            "queries find their original first. Triplet accuracy with a random negative is an easy "
            "figure: most random negatives are obviously different. With the hardest negative "
            "instead, triplet accuracy falls to {hard}."
        ),
        "triplets_consistent": (
            "Triplet accuracy ({acc}) and recall@1 ({r1}) tell a consistent story; with the "
            "hardest negative, triplet accuracy is {hard}."
        ),
        "by_lang": "By the language of the query, recall@1 ({task}) is: {values}.",
        "by_lang_gap": (
            "Queries in {worst} do clearly worse than queries in {best} ({worst_value} against "
            "{best_value})."
        ),
        # verification
        "verification": (
            "Used as a yes/no test (is this generated work derived from that original?), the "
            "fused score has a ROC-AUC of {auc}. At a 1% false-positive rate the threshold is "
            "{t1} and it recognises {recall1} of the derived works; at 5% the threshold is {t5} "
            "and it recognises {recall5}."
        ),
        "calibration_saved": (
            "These thresholds were measured on the validation split and saved to calibration.json, "
            "which the search service uses to say “derived” or “not derived”."
        ),
        "distributions": (
            "The histograms show the cosine similarity of each query with its own original "
            "(matching pairs) and with every other original (non-matching pairs); the less they "
            "overlap, the easier it is to tell them apart."
        ),
        # noise
        "noise_one_run": (
            "This is a single run with a single seed. A difference of a few tenths of a percent "
            "between two such runs cannot be told apart from seed-to-seed noise; `artsim sweep` "
            "repeats runs over several seeds and reports intervals."
        ),
        "noise_interval": (
            "With {queries} validation queries, a recall@1 of {r1} is only known to lie between "
            "{low} and {high} (95% interval)."
        ),
        "no_eval": "Retrieval figures are not available: {reason}",
        # recommendations
        "rec_overfit": (
            "Reduce over-fitting: add data augmentation (crops, colour jitter, flips of the "
            "generated images; paraphrased prompts), raise dropout or weight decay, and add more "
            "original works rather than more derivatives of the same ones."
        ),
        "rec_text_weak": (
            "Text is the weakest modality: try a stronger text tower (e5-small handles English "
            "and Spanish), richer captions for the originals, and check that prompts and captions "
            "are in the languages the tower knows."
        ),
        "rec_image_weak": (
            "Images are the weakest modality: try a stronger image tower or fine-tune its last "
            "blocks (finetune_epochs) with a low learning rate."
        ),
        "rec_hard_negatives": (
            "Judge the model by recall@k and hard-negative accuracy rather than random-negative "
            "triplet accuracy, and train with harder negatives ({option})."
        ),
        "rec_longer": (
            "Train for more epochs (the validation loss was still falling when the limit was "
            "reached)."
        ),
        "rec_nan": (
            "Lower the learning rate (the loss became NaN) and check the data for broken images "
            "or empty texts."
        ),
        "rec_finetune": (
            "The learning rate was reduced to {final_lr}: a short fine-tuning stage with a low "
            "learning rate (finetune_epochs) may polish the last points."
        ),
        "rec_baseline": (
            "Find out why the trained image head does not beat the baseline before relying on it: "
            "look at the image task's missed queries in eval/val.top5.json."
        ),
        "rec_lang": "Add more training data in {lang}, the language whose queries do worst.",
        "rec_threshold": (
            "Do not use the score as an automatic “derived / not derived” verdict yet: at a 1% "
            "false-positive rate it only recognises {recall} of the derived works. Use it to rank "
            "candidates for a person to check."
        ),
        "rec_seeds": (
            "Repeat the run with several seeds (`artsim sweep`) before drawing conclusions from "
            "small differences; the validation set has only {groups} original works."
        ),
        "rec_seeds_plain": (
            "Repeat the run with several seeds (`artsim sweep`) before drawing conclusions from "
            "small differences between runs."
        ),
        "rec_external": (
            "Evaluate on an external data set the model has never seen (`artsim evaluate --data "
            "OTHER.csv`) to check that it generalises beyond this collection."
        ),
        # conclusion
        "conclusion_ready": (
            "The model finds the right original first for {r1} of the validation queries and, at "
            "a 1% false-positive rate, recognises {recall1} of the derived works: it is ready for "
            "practical similarity comparison between original and generated art, ideally checked "
            "once on external data."
        ),
        "conclusion_ranking": (
            "The model is useful for ranking candidate originals (recall@5 {r5}), but with "
            "recall@1 at {r1} it should not yet decide alone which original a work came from."
        ),
        "conclusion_not_ready": (
            "The model is not ready for practical use: recall@1 is {r1} and recall@5 {r5} on the "
            "validation queries."
        ),
        "conclusion_no_eval": (
            "Without retrieval figures, the triplet figures alone cannot say whether the model is "
            "ready for use; run `artsim evaluate`."
        ),
        # gallery
        "gallery_intro": (
            "Each row is a generated work (left) and the five originals the model finds closest "
            "to it, most similar first; the right original is framed in green. Misses come first."
        ),
        "gallery_rank": "right original at rank {rank}",
        "gallery_hit": "found first",
        "query": "query",
        # tables
        "col_figure": "figure",
        "col_final": "final epoch",
        "col_best": "best epoch",
        "col_task": "task",
        "col_value": "value",
        "col_change": "change",
        "col_better": "better",
        "col_noise": "beyond noise?",
        "col_rank": "rank",
        "col_threshold_at": "threshold at {fpr} FPR",
        "col_recall_at": "recall at {fpr} FPR",
        "col_precision_at": "precision at {fpr} FPR",
        # compare
        "compare_intro": "Figures of the final epoch, as in the seed analysis; {reference} is the reference.",
        "change_lower": "{pct} lower",
        "change_higher": "{pct} higher",
        "change_same": "no change",
        "better_a": "{name}",
        "better_none": "–",
        "noise_cannot": (
            "Each side has a single run, so noise cannot be judged: a difference may be only the "
            "luck of the seed. Repeat each configuration with several seeds."
        ),
        "noise_cannot_short": "cannot be judged (one run per side)",
        "noise_beyond": "yes (p = {p})",
        "noise_within": "no (p = {p})",
        "noise_seed_only": (
            "These runs differ only in their seed: every difference between them is seed-to-seed "
            "noise."
        ),
        "noise_groups": (
            "Runs with the same configuration except the seed are grouped; each value is the mean "
            "over the group's seeds, and Welch's t-test says whether a difference is larger than "
            "the seed-to-seed spread."
        ),
        "compare_summary": (
            "{name} is better on {better} of {total} figures where one is better and worse on "
            "{worse}."
        ),
        "compare_significant": "Differences larger than the seed-to-seed spread: {figures}.",
        "compare_none_significant": "No difference is larger than the seed-to-seed spread.",
        # sweep
        "sweep_intro": (
            "{n_configs} split configurations × {n_seeds} seeds. Each cell is the mean over seeds "
            "with a 95% t-interval; figures come from each run's final epoch."
        ),
        "sweep_caveat": (
            "Validation figures are measured on different validation sets (their size depends on "
            "the split), so part of a difference can come from the sets themselves."
        ),
        "verdict_better": "{winner} is better on {figure} ({winner_value} against {loser_value}).",
        "verdict_noise": (
            "No difference beyond noise on {figure} ({a_name} {a_value}, {b_name} {b_value})."
        ),
        "verdict_one_seed": (
            "On {figure}, {a_name} {a_value} against {b_name} {b_value}: with one seed per split, "
            "noise cannot be judged."
        ),
        "verdict_neutral": "{figure}: {a_name} {a_value}, {b_name} {b_value}.",
    },
    "es": {
        "title": "Informe de entrenamiento: {run}",
        "compare_title": "Comparación de entrenamientos",
        "sweep_title": "Barrido de particiones: {data}",
        "h_summary": "Resumen",
        "h_figures": "Métricas principales",
        "h_curves": "Curvas de aprendizaje",
        "h_stop": "Por qué se detuvo el entrenamiento",
        "h_modalities": "Rendimiento por modalidad",
        "h_cross": "De imagen a texto y de texto a imagen",
        "h_gap": "Entrenamiento frente a validación",
        "h_retrieval": "Recuperación: encontrar el original de una obra generada",
        "h_verification": "¿Es una obra derivada? Una prueba de sí o no",
        "h_distributions": "Puntuaciones de pares correspondientes y no correspondientes",
        "h_roc": "Curvas ROC",
        "h_gallery": "Ejemplos: consultas y sus cinco originales más cercanos",
        "h_noise": "Hasta qué punto fiarse de estas cifras",
        "h_recommendations": "Recomendaciones",
        "h_conclusion": "Conclusión",
        "h_verdicts": "Veredictos",
        "h_runs": "Entrenamientos",
        "overview": (
            "El modelo {model_id} se entrenó con {data}: {train_items} elementos ({train_groups} "
            "obras originales) para entrenamiento y {val_items} elementos ({val_groups} obras "
            "originales) para validación, con la torre de imagen {image_tower} y la torre de "
            "texto {text_tower}."
        ),
        "overview_split": (
            "La partición mantiene cada original y todas sus obras derivadas en el mismo lado, de "
            "modo que la validación mide la similitud con obras no vistas y no la memoria."
        ),
        "stop_early_stopping": (
            "El entrenamiento duró {epochs} épocas y lo detuvo la parada temprana (early "
            "stopping): la pérdida de validación había dejado de mejorar. La mejor pérdida de "
            "validación, {best_loss}, se alcanzó en la época {best_epoch}."
        ),
        "stop_max_epochs": (
            "El entrenamiento agotó las {epochs} épocas permitidas (el límite de épocas). La mejor "
            "pérdida de validación, {best_loss}, se alcanzó en la época {best_epoch}."
        ),
        "stop_still_improving": (
            "La pérdida de validación seguía mejorando en la última época, así que un "
            "entrenamiento más largo probablemente ayudaría."
        ),
        "stop_nan_loss": (
            "El entrenamiento se detuvo tras {epochs} épocas porque la pérdida dejó de ser un "
            "número (NaN); se conserva el último modelo válido, cuya mejor pérdida de validación "
            "fue {best_loss}, en la época {best_epoch}."
        ),
        "stop_other": (
            "El entrenamiento duró {epochs} épocas y terminó por el motivo «{reason}». La mejor "
            "pérdida de validación, {best_loss}, se alcanzó en la época {best_epoch}."
        ),
        "lr_reduced": (
            "La tasa de aprendizaje se redujo {times} veces al estancarse la pérdida de "
            "validación, de {first} a {final}."
        ),
        "lr_reduced_once": (
            "La tasa de aprendizaje se redujo una vez al estancarse la pérdida de validación, de "
            "{first} a {final}."
        ),
        "lr_constant": "La tasa de aprendizaje se mantuvo en {final} durante todo el entrenamiento.",
        "lr_final_only": "La tasa de aprendizaje final fue {final}.",
        "modality_ranking": (
            "Según la pérdida de validación, la modalidad más fuerte es {first} ({first_value}), "
            "seguida de {second} ({second_value}); la más débil es {third} ({third_value})."
        ),
        "modality_accuracy": (
            "Precisión de tripletes en validación: imagen {image}, texto {text}, intermodal "
            "{cross}."
        ),
        "retrieval_ranking": (
            "En la recuperación sobre las consultas de validación, el recall@1 ordena las tareas "
            "así: {ranking}."
        ),
        "retrieval_ranking_agrees": (
            "La recuperación coincide con las pérdidas en cuál es la modalidad individual más "
            "fuerte."
        ),
        "retrieval_ranking_disagrees": (
            "La recuperación no coincide con las pérdidas: según el recall@1, la tarea de una sola "
            "modalidad más fuerte es {best}, no {loss_best}."
        ),
        "cross_t2i_higher": (
            "La precisión de texto a imagen ({t2i}) supera a la de imagen a texto ({i2t}) en "
            "{points} puntos: al modelo le resulta más fácil encontrar la imagen original correcta "
            "a partir de un prompt que encontrar la descripción correcta a partir de una imagen "
            "generada."
        ),
        "cross_i2t_higher": (
            "La precisión de imagen a texto ({i2t}) supera a la de texto a imagen ({t2i}) en "
            "{points} puntos: al modelo le resulta más fácil encontrar la descripción correcta a "
            "partir de una imagen generada que la imagen original correcta a partir de un prompt."
        ),
        "cross_equal": (
            "Las precisiones de imagen a texto ({i2t}) y de texto a imagen ({t2i}) son "
            "prácticamente iguales."
        ),
        "cross_retrieval": (
            "En la recuperación, el recall@1 es {i2t_r1} de imagen a texto y {t2i_r1} de texto a "
            "imagen."
        ),
        "gap_figures": (
            "En la última época, la pérdida de entrenamiento es {train_loss} y la de validación "
            "{val_loss}; la precisión de tripletes es {train_acc} en entrenamiento frente a "
            "{val_acc} en validación."
        ),
        "gap_large": (
            "La brecha es grande (la pérdida de validación es {ratio} veces la de entrenamiento): "
            "es un indicio claro de sobreajuste; el modelo se ajusta a las obras de entrenamiento "
            "mejor de lo que generaliza a obras nuevas."
        ),
        "gap_moderate": (
            "La brecha es moderada (la pérdida de validación es {ratio} veces la de "
            "entrenamiento): hay cierto sobreajuste, pero no tanto como para desconfiar de las "
            "cifras de validación."
        ),
        "gap_small": (
            "La brecha es pequeña: no hay indicios de sobreajuste; el modelo rinde casi igual con "
            "obras que no ha visto que con las de entrenamiento."
        ),
        "gap_inverted": (
            "La pérdida de validación es inferior a la de entrenamiento. No se trata de "
            "sobreajuste: el dropout y los tripletes más difíciles que se eligen durante el "
            "entrenamiento hacen que la cifra de entrenamiento sea pesimista."
        ),
        "gap_rising": (
            "La pérdida de validación subió un {rise} después de su mejor época mientras el "
            "entrenamiento continuaba, otro indicio de sobreajuste; el modelo guardado es el "
            "mejor, no el último."
        ),
        "retrieval_summary": (
            "Cada una de las {queries} obras generadas del conjunto de validación se usó como "
            "consulta frente a los {gallery} originales. Combinando imagen y prompt (fusión), el "
            "original correcto aparece en primer lugar en el {r1} de los casos y entre los cinco "
            "primeros en el {r5}; el rango recíproco medio es {mrr}. Al azar se obtendría un "
            "{chance}."
        ),
        "retrieval_summary_task": (
            "Cada una de las {queries} obras generadas del conjunto de validación se usó como "
            "consulta frente a los {gallery} originales. Con la tarea {task}, el original "
            "correcto aparece en primer lugar en el {r1} de los casos y entre los cinco primeros "
            "en el {r5}; el rango recíproco medio es {mrr}. Al azar se obtendría un {chance}."
        ),
        "baseline_figures": (
            "Con las mismas consultas, de imagen a imagen: la referencia de hash perceptual "
            "alcanza un recall@1 de {phash}, las características congeladas de la torre de imagen "
            "{frozen} y el modelo entrenado {model}."
        ),
        "baseline_beaten": "Las cabezas entrenadas mejoran claramente ambas referencias.",
        "baseline_not_frozen": (
            "El modelo entrenado no supera a las características congeladas de la torre: con "
            "estos datos, las cabezas de proyección todavía no aportan nada a la recuperación por "
            "imagen."
        ),
        "baseline_not_phash": (
            "El modelo entrenado no supera a un hash perceptual: aquí las obras generadas son "
            "copias tan cercanas que un hash ya las encuentra."
        ),
        "baseline_tie": (
            "El modelo entrenado está a la par de la mejor referencia, a menos de dos puntos de "
            "recall@1."
        ),
        "baseline_text": (
            "De texto a texto: las características congeladas de la torre de texto alcanzan un "
            "recall@1 de {frozen} y el modelo entrenado {model}."
        ),
        "easy_triplets": (
            "La precisión de tripletes en validación ({acc}) parece casi perfecta y, sin embargo, "
            "solo el {r1} de las consultas encuentra su original en primer lugar. La precisión de "
            "tripletes con un negativo aleatorio es una cifra fácil: la mayoría de los negativos "
            "aleatorios son claramente distintos. Con el negativo más difícil, la precisión de "
            "tripletes baja a {hard}."
        ),
        "triplets_consistent": (
            "La precisión de tripletes ({acc}) y el recall@1 ({r1}) cuentan una historia "
            "coherente; con el negativo más difícil, la precisión de tripletes es {hard}."
        ),
        "by_lang": "Según el idioma de la consulta, el recall@1 ({task}) es: {values}.",
        "by_lang_gap": (
            "Las consultas en {worst} rinden claramente peor que las consultas en {best} "
            "({worst_value} frente a {best_value})."
        ),
        "verification": (
            "Como prueba de sí o no (¿esta obra generada deriva de ese original?), la puntuación "
            "fusionada tiene un ROC-AUC de {auc}. Con una tasa de falsos positivos del 1 %, el "
            "umbral es {t1} y reconoce el {recall1} de las obras derivadas; con un 5 %, el umbral "
            "es {t5} y reconoce el {recall5}."
        ),
        "calibration_saved": (
            "Estos umbrales se midieron en la partición de validación y se guardaron en "
            "calibration.json, que el servicio de búsqueda usa para responder «derivada» o «no "
            "derivada»."
        ),
        "distributions": (
            "Los histogramas muestran la similitud coseno de cada consulta con su propio original "
            "(pares correspondientes) y con todos los demás originales (pares no "
            "correspondientes); cuanto menos se solapan, más fácil es distinguirlos."
        ),
        "noise_one_run": (
            "Se trata de un único entrenamiento con una única semilla. Una diferencia de unas "
            "décimas de punto porcentual entre dos entrenamientos así no se puede distinguir del "
            "ruido entre semillas; `artsim sweep` repite los entrenamientos con varias semillas e "
            "informa de intervalos."
        ),
        "noise_interval": (
            "Con {queries} consultas de validación, de un recall@1 de {r1} solo se sabe que está "
            "entre {low} y {high} (intervalo del 95 %)."
        ),
        "no_eval": "No hay cifras de recuperación: {reason}",
        "rec_overfit": (
            "Reducir el sobreajuste: añadir aumentación de datos (recortes, variaciones de color y "
            "volteos de las imágenes generadas; prompts parafraseados), aumentar el dropout o el "
            "weight decay, y añadir más obras originales en lugar de más derivadas de las mismas."
        ),
        "rec_text_weak": (
            "El texto es la modalidad más débil: probar una torre de texto más potente (e5-small "
            "maneja inglés y español), descripciones más ricas para los originales, y comprobar que "
            "prompts y descripciones están en idiomas que la torre conoce."
        ),
        "rec_image_weak": (
            "La imagen es la modalidad más débil: probar una torre de imagen más potente o ajustar "
            "sus últimos bloques (finetune_epochs) con una tasa de aprendizaje baja."
        ),
        "rec_hard_negatives": (
            "Juzgar el modelo por el recall@k y la precisión con negativos difíciles, no por la "
            "precisión de tripletes con negativos aleatorios, y entrenar con negativos más "
            "difíciles ({option})."
        ),
        "rec_longer": (
            "Entrenar más épocas (la pérdida de validación seguía bajando cuando se llegó al "
            "límite)."
        ),
        "rec_nan": (
            "Bajar la tasa de aprendizaje (la pérdida se volvió NaN) y revisar los datos en busca "
            "de imágenes dañadas o textos vacíos."
        ),
        "rec_finetune": (
            "La tasa de aprendizaje bajó hasta {final_lr}: una breve etapa de ajuste fino con una "
            "tasa de aprendizaje baja (finetune_epochs) podría pulir las últimas décimas."
        ),
        "rec_baseline": (
            "Averiguar por qué la cabeza de imagen entrenada no supera a la referencia antes de "
            "confiar en ella: revisar las consultas falladas de la tarea de imagen en "
            "eval/val.top5.json."
        ),
        "rec_lang": "Añadir más datos de entrenamiento en {lang}, el idioma cuyas consultas rinden peor.",
        "rec_threshold": (
            "No usar todavía la puntuación como veredicto automático de «derivada / no derivada»: "
            "con una tasa de falsos positivos del 1 % solo reconoce el {recall} de las obras "
            "derivadas. Conviene usarla para ordenar candidatos que luego revise una persona."
        ),
        "rec_seeds": (
            "Repetir el entrenamiento con varias semillas (`artsim sweep`) antes de sacar "
            "conclusiones de diferencias pequeñas; el conjunto de validación solo tiene {groups} "
            "obras originales."
        ),
        "rec_seeds_plain": (
            "Repetir el entrenamiento con varias semillas (`artsim sweep`) antes de sacar "
            "conclusiones de diferencias pequeñas entre entrenamientos."
        ),
        "rec_external": (
            "Evaluar el modelo con un conjunto de datos externo que nunca haya visto (`artsim "
            "evaluate --data OTRO.csv`) para comprobar que generaliza más allá de esta colección."
        ),
        "conclusion_ready": (
            "El modelo encuentra el original correcto en primer lugar para el {r1} de las "
            "consultas de validación y, con una tasa de falsos positivos del 1 %, reconoce el "
            "{recall1} de las obras derivadas: está listo para comparar en la práctica la "
            "similitud entre arte original y generado, idealmente tras comprobarlo una vez con "
            "datos externos."
        ),
        "conclusion_ranking": (
            "El modelo es útil para ordenar originales candidatos (recall@5 de {r5}), pero con un "
            "recall@1 de {r1} todavía no debería decidir por sí solo de qué original procede una "
            "obra."
        ),
        "conclusion_not_ready": (
            "El modelo no está listo para un uso práctico: el recall@1 es {r1} y el recall@5 {r5} "
            "en las consultas de validación."
        ),
        "conclusion_no_eval": (
            "Sin cifras de recuperación, las cifras de tripletes por sí solas no permiten decir si "
            "el modelo está listo para usarse; conviene ejecutar `artsim evaluate`."
        ),
        "gallery_intro": (
            "Cada fila es una obra generada (a la izquierda) y los cinco originales que el modelo "
            "considera más cercanos, del más al menos parecido; el original correcto aparece con "
            "marco verde. Los fallos van primero."
        ),
        "gallery_rank": "original correcto en la posición {rank}",
        "gallery_hit": "encontrado en primer lugar",
        "query": "consulta",
        "col_figure": "métrica",
        "col_final": "última época",
        "col_best": "mejor época",
        "col_task": "tarea",
        "col_value": "valor",
        "col_change": "cambio",
        "col_better": "mejor",
        "col_noise": "¿más allá del ruido?",
        "col_rank": "posición",
        "col_threshold_at": "umbral con {fpr} de FP",
        "col_recall_at": "recall con {fpr} de FP",
        "col_precision_at": "precisión con {fpr} de FP",
        "compare_intro": (
            "Cifras de la última época, como en el análisis original; {reference} es la referencia."
        ),
        "change_lower": "un {pct} menor",
        "change_higher": "un {pct} mayor",
        "change_same": "sin cambios",
        "better_a": "{name}",
        "better_none": "–",
        "noise_cannot": (
            "Cada lado tiene un único entrenamiento, así que no se puede juzgar el ruido: una "
            "diferencia puede deberse solo a la suerte de la semilla. Conviene repetir cada "
            "configuración con varias semillas."
        ),
        "noise_cannot_short": "no se puede juzgar (un entrenamiento por lado)",
        "noise_beyond": "sí (p = {p})",
        "noise_within": "no (p = {p})",
        "noise_seed_only": (
            "Estos entrenamientos solo se diferencian en la semilla: todas sus diferencias son "
            "ruido entre semillas."
        ),
        "noise_groups": (
            "Los entrenamientos con la misma configuración salvo la semilla se agrupan; cada valor "
            "es la media de las semillas del grupo, y la prueba t de Welch indica si una "
            "diferencia supera la dispersión entre semillas."
        ),
        "compare_summary": (
            "{name} es mejor en {better} de las {total} métricas en las que una es mejor, y peor "
            "en {worse}."
        ),
        "compare_significant": "Diferencias mayores que la dispersión entre semillas: {figures}.",
        "compare_none_significant": "Ninguna diferencia supera la dispersión entre semillas.",
        "sweep_intro": (
            "{n_configs} configuraciones de partición × {n_seeds} semillas. Cada celda es la media "
            "de las semillas con un intervalo t del 95 %; las cifras son las de la última época de "
            "cada entrenamiento."
        ),
        "sweep_caveat": (
            "Las cifras de validación se miden sobre conjuntos de validación distintos (su tamaño "
            "depende de la partición), así que parte de una diferencia puede venir de los propios "
            "conjuntos."
        ),
        "verdict_better": "{winner} es mejor en {figure} ({winner_value} frente a {loser_value}).",
        "verdict_noise": (
            "No hay diferencia más allá del ruido en {figure} ({a_name} {a_value}, {b_name} "
            "{b_value})."
        ),
        "verdict_one_seed": (
            "En {figure}, {a_name} {a_value} frente a {b_name} {b_value}: con una sola semilla por "
            "partición no se puede juzgar el ruido."
        ),
        "verdict_neutral": "{figure}: {a_name} {a_value}, {b_name} {b_value}.",
    },
}

# --- names of figures, tasks, modalities ---------------------------------------------------------

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "epochs_completed": "epochs completed",
        "final_lr": "final learning rate",
        "lr": "learning rate",
        "epoch": "epoch",
        "train/loss": "training loss",
        "train/triplet_acc": "training triplet accuracy",
        "val/loss": "validation loss",
        "val/triplet_acc": "validation triplet accuracy",
        "val/image_loss": "image loss",
        "val/image_acc": "image accuracy",
        "val/text_loss": "text loss",
        "val/text_acc": "text accuracy",
        "val/cross_loss": "cross-modal loss",
        "val/cross_acc": "cross-modal accuracy",
        "val/i2t_loss": "image-to-text loss (i2t)",
        "val/i2t_acc": "image-to-text accuracy (i2t)",
        "val/t2i_loss": "text-to-image loss (t2i)",
        "val/t2i_acc": "text-to-image accuracy (t2i)",
        "train/image_loss": "training image loss",
        "train/text_loss": "training text loss",
        "train/cross_loss": "training cross-modal loss",
        "train/i2t_loss": "training i2t loss",
        "train/t2i_loss": "training t2i loss",
        "loss": "loss",
        "accuracy": "accuracy",
        "train": "training",
        "val": "validation",
        "image": "image",
        "text": "text",
        "cross": "cross-modal",
        "i2t": "image → text",
        "t2i": "text → image",
        "fused": "fused (image + text)",
        "recall@1": "recall@1",
        "recall@5": "recall@5",
        "recall@10": "recall@10",
        "mrr": "MRR",
        "map": "mAP",
        "triplet_acc": "triplet accuracy (random negative)",
        "triplet_acc_hard": "triplet accuracy (hardest negative)",
        "roc_auc": "ROC-AUC",
        "n_queries": "queries",
        "phash": "perceptual hash",
        "frozen": "frozen tower features",
        "model": "trained model",
        "matching": "matching pairs",
        "non_matching": "non-matching pairs",
        "similarity": "cosine similarity",
        "density": "density",
        "fpr": "false-positive rate",
        "tpr": "true-positive rate (recall)",
        "fpr_log": "false-positive rate (log scale)",
        "chance": "chance",
        "learning_rate_title": "learning rate",
        "losses_title": "losses by modality",
        "accuracy_title": "triplet accuracy",
        "total_loss_title": "total loss",
        "en": "English",
        "es": "Spanish",
        "unknown": "unknown language",
        "and": "and",
        "eval/": "eval ",
        "mean": "mean",
        "interval": "95% interval",
        "seeds": "seeds",
        "verification/": "verification ",
        "open_set/": "open set (ISC) ",
        "micro_ap": "µAP",
        "recall@p0.9": "recall at precision 0.90",
        "meta_model": "model",
        "meta_data": "data",
    },
    "es": {
        "epochs_completed": "épocas completadas",
        "final_lr": "tasa de aprendizaje final",
        "lr": "tasa de aprendizaje",
        "epoch": "época",
        "train/loss": "pérdida de entrenamiento",
        "train/triplet_acc": "precisión de tripletes en entrenamiento",
        "val/loss": "pérdida de validación",
        "val/triplet_acc": "precisión de tripletes en validación",
        "val/image_loss": "pérdida de imagen",
        "val/image_acc": "precisión de imagen",
        "val/text_loss": "pérdida de texto",
        "val/text_acc": "precisión de texto",
        "val/cross_loss": "pérdida intermodal",
        "val/cross_acc": "precisión intermodal",
        "val/i2t_loss": "pérdida de imagen a texto (i2t)",
        "val/i2t_acc": "precisión de imagen a texto (i2t)",
        "val/t2i_loss": "pérdida de texto a imagen (t2i)",
        "val/t2i_acc": "precisión de texto a imagen (t2i)",
        "train/image_loss": "pérdida de imagen en entrenamiento",
        "train/text_loss": "pérdida de texto en entrenamiento",
        "train/cross_loss": "pérdida intermodal en entrenamiento",
        "train/i2t_loss": "pérdida i2t en entrenamiento",
        "train/t2i_loss": "pérdida t2i en entrenamiento",
        "loss": "pérdida",
        "accuracy": "precisión",
        "train": "entrenamiento",
        "val": "validación",
        "image": "imagen",
        "text": "texto",
        "cross": "intermodal",
        "i2t": "imagen → texto",
        "t2i": "texto → imagen",
        "fused": "fusión (imagen + texto)",
        "recall@1": "recall@1",
        "recall@5": "recall@5",
        "recall@10": "recall@10",
        "mrr": "MRR",
        "map": "mAP",
        "triplet_acc": "precisión de tripletes (negativo aleatorio)",
        "triplet_acc_hard": "precisión de tripletes (negativo más difícil)",
        "roc_auc": "ROC-AUC",
        "n_queries": "consultas",
        "phash": "hash perceptual",
        "frozen": "características congeladas",
        "model": "modelo entrenado",
        "matching": "pares correspondientes",
        "non_matching": "pares no correspondientes",
        "similarity": "similitud coseno",
        "density": "densidad",
        "fpr": "tasa de falsos positivos",
        "tpr": "tasa de verdaderos positivos (recall)",
        "fpr_log": "tasa de falsos positivos (escala logarítmica)",
        "chance": "azar",
        "learning_rate_title": "tasa de aprendizaje",
        "losses_title": "pérdidas por modalidad",
        "accuracy_title": "precisión de tripletes",
        "total_loss_title": "pérdida total",
        "en": "inglés",
        "es": "español",
        "unknown": "idioma desconocido",
        "and": "y",
        "eval/": "evaluación ",
        "mean": "media",
        "interval": "intervalo del 95 %",
        "seeds": "semillas",
        "verification/": "verificación ",
        "open_set/": "conjunto abierto (ISC) ",
        "micro_ap": "µAP",
        "recall@p0.9": "recall con precisión 0,90",
        "meta_model": "modelo",
        "meta_data": "datos",
    },
}


def check_lang(lang: str) -> str:
    """The language code if supported; otherwise a ValueError naming the known ones."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGS)}")
    return lang


def say(lang: str, key: str, /, **fields: Any) -> str:
    """One sentence template of ``lang`` filled with ``fields``.

    >>> say("es", "lr_final_only", final="0.00015")
    'La tasa de aprendizaje final fue 0.00015.'
    """
    return TEMPLATES[check_lang(lang)][key].format(**fields)


def label(lang: str, key: str, /) -> str:
    """The name of a figure, task or modality; ``eval/<task>/<metric>`` keys are composed."""
    names = LABELS[check_lang(lang)]
    if key in names:
        return names[key]
    for prefix in ("eval/", "verification/", "open_set/"):
        if key.startswith(prefix):
            parts = key[len(prefix) :].split("/")
            return names[prefix] + " ".join(names.get(part, part) for part in parts)
    return key


def num(value: Any, digits: int = 4) -> str:
    """A figure as the seed writes it: up to ``digits`` significant digits, ``–`` if missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{float(value):.{digits}g}"


def pct(value: Any, lang: str, digits: int = 1) -> str:
    """A share (0.32) as a percentage ("32.0%"; Spanish puts a space before the sign)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{100.0 * float(value):.{digits}f}"
    return f"{text} %" if lang == "es" else f"{text}%"


def join_list(parts: list[str], lang: str) -> str:
    """``a, b and c`` / ``a, b y c``."""
    if len(parts) <= 1:
        return "".join(parts)
    conjunction = label(lang, "and")
    last = parts[-1].lower()
    # Spanish writes "e" for "y" before an /i/ sound: "español e inglés"
    if lang == "es" and (
        last.startswith(("i", "í"))
        or (last.startswith(("hi", "hí")) and not last.startswith("hie"))
    ):
        conjunction = "e"
    return f"{', '.join(parts[:-1])} {conjunction} {parts[-1]}"
