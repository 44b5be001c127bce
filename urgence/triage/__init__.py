"""Call triage: keyword detections -> emergency services 15 / 17 / 18."""
