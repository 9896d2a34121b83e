"""What other programs get from `redress`: the client by its short name, the contract without the client."""

from __future__ import annotations

import subprocess
import sys

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.helpers.contract_user import ContractUser
from tests.helpers.processes import ROOT


def test_the_contract_loads_without_the_client_and_the_client_by_its_short_name():
    script = (
        "import sys, redress.contract, redress.crises, redress.search_attributes; "
        "print(sorted(m for m in ('redress.client', 'cryptography', 'temporalio.client') if m in sys.modules)); "
        "from redress import RedressClient, Refused; print(RedressClient.__module__, Refused.__module__)"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.splitlines() == ["[]", "redress.client redress.client"]


async def test_a_workflow_using_the_contract_loads_in_the_default_sandbox(env: WorkflowEnvironment):
    """No passthrough settings of ours: a sandbox imports the contract afresh, and it must load there."""
    async with Worker(env.client, task_queue="contract-user", workflows=[ContractUser]):
        pass
