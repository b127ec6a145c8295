"""aihpa as a library: a simulated cluster, a labeled Deployment under rising load, the controller deciding."""

import asyncio

import aihpa

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "aihpa/enabled": "true"}},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "1"}}}]}}},
}


async def main() -> None:
    async with aihpa.Cluster() as cluster:  # Kubernetes API on 127.0.0.1; its clock moves when we advance it
        start = cluster.clock.now()
        cluster.attach("default", "web", lambda t: 1.0 + (t - start) / 600)  # CPU cores: +0.1 a minute
        await cluster.ensure_namespace("aihpa")  # where the controller publishes its replica profiles
        await cluster.create(DEPLOYMENT)
        async with await cluster.api_client() as api:
            kube = aihpa.KubeClient(api)
            settings = aihpa.ControllerSettings(leader_election=False, run_loop=False)  # we drive the cycles
            async with aihpa.Controller(client=kube, metrics=aihpa.MetricsAPISource(kube), settings=settings,
                                        forecaster=aihpa.load_default_forecaster(), clock=cluster.clock) as ctl:
                await ctl.wait_until(lambda: "default/web" in ctl.workloads)
                for minute in range(1, 46):  # the model forecasts once it has 8 minutes of history
                    await cluster.advance(60)
                    report = await ctl.run_cycle()
                    for d in report.decisions if minute % 5 == 0 else ():
                        print(f"minute {minute}: {d.key} {d.current} -> {d.decision.replicas} ({d.decision.reason})")


asyncio.run(main())
