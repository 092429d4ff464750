"""Jobs: the one owner of job state (service), sending to workers (dispatch), following them (tracker)."""
