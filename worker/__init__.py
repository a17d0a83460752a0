"""The worker room: Celery workers that run queued runs with the trainer and report them live.

`miles worker` (`worker.cli`) supervises one Celery process per GPU (or per CPU slot);
each consumes its queue one run at a time (`worker.process`), running the task
``miles.run_training`` (`worker.tasks`) with the database reporter (`worker.reporter`).
"""
