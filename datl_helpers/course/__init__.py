"""What a learner sees: claims over the results, notebook 05's summary, exercise checks, quizzes,
study time, widgets, plots, running the notebooks and the website."""
