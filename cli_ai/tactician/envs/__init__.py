"""Gymnasium environments of cli-ai: the knob env every knob target's search
drives (`knob_env`), and the simulated sequential targets' envs (scheduler,
autoscaling), which their Targets build (`targets.simulated`)."""
