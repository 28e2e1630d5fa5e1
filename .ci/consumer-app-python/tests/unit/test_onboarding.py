"""The app's test, as the README suggests for Python apps: call the CLI with --json, read the result.

Run after `cdk synth`:  python -m unittest discover -s tests   (or pytest)
"""
import json
import subprocess
import unittest


def run_workflow(workflow: str, run_input: dict) -> dict:
    completed = subprocess.run(
        ["npx", "cdk-orchestrator-local", "run", "--app", "cdk.out", "--workflow", workflow,
         "--input", json.dumps(run_input), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    # Exit 0: the run succeeded; 1: it failed (the JSON still describes it); 2: usage or environment.
    if completed.returncode not in (0, 1):
        raise AssertionError(f"cdk-orchestrator-local exited {completed.returncode}: {completed.stderr}")
    return json.loads(completed.stdout)


class OnboardingTest(unittest.TestCase):
    def test_runs_to_complete_with_the_optional_failure_recorded(self):
        run = run_workflow("Onboarding", {"uid": "py-app-1", "metadata": {"customer": "ACME"}})
        self.assertEqual(run["status"], "SUCCEEDED", run.get("cause"))
        doc = run["statusDocument"]
        self.assertEqual(doc["status"]["state"], "Complete")
        self.assertEqual(doc["activities"]["Check"]["pre"]["status"]["state"], "Complete")
        self.assertEqual(doc["activities"]["Rate"]["async"]["status"]["state"], "Optional Task Error")
        self.assertEqual(doc["activities"]["Rate"]["async"]["mandatory"]["Rate"]["state"], "Complete")
        self.assertGreater(run["counters"]["totals"]["invocations"], 0)


if __name__ == "__main__":
    unittest.main()
