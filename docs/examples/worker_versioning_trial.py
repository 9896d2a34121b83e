"""Worker Versioning tried on the dev server: what a pinned and an auto-upgrade case do across a deploy.

`python docs/examples/worker_versioning_trial.py` (from the checkout, with the venv's python).

Two builds of one workflow type run side by side as two Worker Deployment
Versions of one deployment, as a rainbow deploy would run them. A case started
on build 1 is then sent a message after build 2 became current. Read with
docs/changing-workflows.md, which records what this printed and why Redress
chose what it chose.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkerDeploymentConfig

from worker import temporal_binary

DEPLOYMENT = "redress-trial"
QUEUE = "versioning-trial"


class Case:
    """The shape of every build: it waits for the customer's reply, then says which build finished it."""

    build = 0

    def __init__(self) -> None:
        self.replied = False

    async def finish(self) -> str:
        await workflow.wait_condition(lambda: self.replied)
        return f"finished on build {self.build}"

    @workflow.signal
    def reply(self) -> None:
        self.replied = True


@workflow.defn(name="Pinned", versioning_behavior=VersioningBehavior.PINNED, sandboxed=False)
class PinnedBuild1(Case):
    build = 1

    @workflow.run
    async def run(self) -> str:
        return await self.finish()


@workflow.defn(name="Pinned", versioning_behavior=VersioningBehavior.PINNED, sandboxed=False)
class PinnedBuild2(Case):
    build = 2

    @workflow.run
    async def run(self) -> str:
        return await self.finish()


@workflow.defn(name="Auto", versioning_behavior=VersioningBehavior.AUTO_UPGRADE, sandboxed=False)
class AutoBuild1(Case):
    build = 1

    @workflow.run
    async def run(self) -> str:
        return await self.finish()


@workflow.defn(name="Auto", versioning_behavior=VersioningBehavior.AUTO_UPGRADE, sandboxed=False)
class AutoBuild2(Case):
    build = 2

    @workflow.run
    async def run(self) -> str:
        return await self.finish()


BUILDS = {1: [PinnedBuild1, AutoBuild1], 2: [PinnedBuild2, AutoBuild2]}


def worker(client: Client, number: int) -> Worker:
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=BUILDS[number],
        deployment_config=WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(deployment_name=DEPLOYMENT, build_id=str(number)),
            use_worker_versioning=True,
        ),
    )


async def make_current(env: WorkflowEnvironment, number: int) -> None:
    """What a deploy does once build `number` polls: `temporal worker deployment set-current-version`."""
    address = env.client.service_client.config.target_host
    for _ in range(50):  # the version exists once its workers have polled
        process = await asyncio.create_subprocess_exec(
            temporal_binary(),
            "worker",
            "deployment",
            "set-current-version",
            "--address",
            address,
            "--deployment-name",
            DEPLOYMENT,
            "--build-id",
            str(number),
            "--yes",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        if await process.wait() == 0:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"could not make build {number} current: {err.decode()}")


async def main() -> None:
    async with await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary()) as env:
        client = env.client
        async with worker(client, 1):
            await make_current(env, 1)
            started = {
                kind: await client.start_workflow(kind, id=f"{kind}-{uuid.uuid4().hex[:6]}", task_queue=QUEUE)
                for kind in ("Pinned", "Auto")
            }
            stranded = await client.start_workflow("Pinned", id=f"stranded-{uuid.uuid4().hex[:6]}", task_queue=QUEUE)
            await asyncio.sleep(1)  # each took its first workflow task on build 1
            async with worker(client, 2):
                await make_current(env, 2)
                await asyncio.sleep(2)  # the new routing reaches the task queue
                fresh = await client.start_workflow("Pinned", id=f"fresh-{uuid.uuid4().hex[:6]}", task_queue=QUEUE)
                for handle in (*started.values(), fresh):
                    await handle.signal("reply")
                for label, handle in (
                    ("pinned, started on build 1", started["Pinned"]),
                    ("auto-upgrade, started on build 1", started["Auto"]),
                    ("pinned, started on build 2", fresh),
                ):
                    print(f"{label}: {await asyncio.wait_for(handle.result(), timeout=30)}")
        # build 1's workers are gone (a deploy that stopped them): a case pinned to build 1 hears its message...
        async with worker(client, 2):
            await stranded.signal("reply")
            try:
                print(f"pinned to build 1, build 1 stopped: {await asyncio.wait_for(stranded.result(), 10)}")
            except TimeoutError:
                print("pinned to build 1, build 1 stopped: still waiting after 10 s (build 2 does not take it)")
        async with worker(client, 1):  # ...and goes on only when build 1 is back
            print(f"pinned to build 1, build 1 back: {await asyncio.wait_for(stranded.result(), 30)}")


if __name__ == "__main__":
    asyncio.run(main())
