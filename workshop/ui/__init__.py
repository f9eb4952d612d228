"""What the learner sees and types: the REPL, the renderer and its views, themes, trainer mode, slides."""
