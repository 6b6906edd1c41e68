"""Training: the loop, the run folder, checkpoint policy, LR schedule, data-parallel agreement
and reproducibility. Shared by the translation and the language-model tasks."""
