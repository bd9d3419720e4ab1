"""The run store: the only code that reads or writes inside a run folder or the runs folder
(run folders, their bounded readers, the recorder a training job writes through, the
curves a run keeps, the ready-made model, the dashboard's settings beside the runs)."""
