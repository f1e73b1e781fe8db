"""create_app(settings): the one place where draftdl's parts are built and wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from draftdl import __version__
from draftdl.api import control, drafts, health, tasks, webhooks
from draftdl.api.deps import Services, configured_token, require_token, require_token_or_query
from draftdl.api.docs import install_docs
from draftdl.api.errors import install_error_handlers
from draftdl.api.hosts import HostGuard
from draftdl.api.schemas import errors
from draftdl.aria2.process import Aria2Manager
from draftdl.aria2.rpc import Aria2Client
from draftdl.cluster import jobs as cluster_jobs
from draftdl.cluster.control import ControlChannel, shared_setting
from draftdl.cluster.events import ClusterEvents
from draftdl.cluster.worker import Worker
from draftdl.datadir import hold_data_dir
from draftdl.db.repo import Database
from draftdl.drafts.builder import BUILD_MODULES, DraftBuilder, JianYingDraftBuilder
from draftdl.drafts.location import choose_drafts_root, remove_stale_builds
from draftdl.drafts.pool import BuildPool
from draftdl.egress import EgressGuard
from draftdl.events import sse
from draftdl.events.bus import EventBus
from draftdl.events.socketio import SocketGateway
from draftdl.limits import load_overall_limit
from draftdl.logsafe import install_access_log_filter
from draftdl.mcp.http import McpEndpoint
from draftdl.settings import Settings
from draftdl.tasks.queue import OVERALL_LIMIT, TaskQueue
from draftdl.web.pages import install_pages
from draftdl.webhooks import secret as webhook_secret
from draftdl.webhooks.outbox import Outbox
from draftdl.webhooks.sender import WebhookSender

log = logging.getLogger(__name__)


def operation_id(route: APIRoute) -> str:
    """The function's name (``submit``, ``get_task``): what Coze and other importers show
    as the tool's name, rather than FastAPI's ``submit_api_tasks_submit_post``."""
    return route.name


def create_app(settings: Settings, builder: DraftBuilder | None = None) -> FastAPI:
    install_access_log_filter()
    gateway = SocketGateway(settings)
    mcp = McpEndpoint(settings)  # /mcp: the API as tools for AI agents

    @contextlib.asynccontextmanager
    async def run_parts(app: FastAPI) -> AsyncIterator[None]:
        settings.downloads_dir.mkdir(parents=True, exist_ok=True)
        if kept := await asyncio.to_thread(load_overall_limit, settings.data_dir):
            settings.max_overall_download_limit = kept  # set at run time, before a restart
        db = Database(settings.db_url, jobs=settings.cluster)  # cluster: submits enqueue
        await db.init()
        runs_tasks = settings.role != "api"  # an api node runs no aria2c and builds nothing
        if settings.cluster and await db.runner.write(cluster_jobs.prepare):
            log.info("database: the task queue's tables made (pgqueuer)")
        if settings.cluster and (shared := await db.runner.read(shared_setting, OVERALL_LIMIT)):
            settings.max_overall_download_limit = shared  # set on some node at run time
        drafts_root = await asyncio.to_thread(
            choose_drafts_root,
            settings.drafts_root,
            settings.data_dir.resolve() / "drafts",
            sys.platform,
            os.environ,
            Path.home(),
            settings.draft_profile,
        )
        log.info("drafts go to %s (%s)", drafts_root.path, drafts_root.reason)
        staging = settings.data_dir.resolve() / "staging"  # used when on the root's device
        if stale := await asyncio.to_thread(remove_stale_builds, drafts_root.path, 600.0, staging):
            log.warning("removed %d unfinished draft folders left by an earlier run", stale)
        client = Aria2Client()
        manager = Aria2Manager(settings, client)
        # Builds run in worker processes (off the GIL); none are started for a given builder.
        pool = None
        if builder is None and runs_tasks:
            pool = BuildPool(settings.build_workers, BUILD_MODULES)
        drafts = builder or JianYingDraftBuilder(
            drafts_root.path, settings.local_media_roots, settings.draft_profile, staging, pool
        )
        # With url_deny_networks, every connection aria2c makes is checked by the guard.
        egress = EgressGuard() if settings.url_deny_networks else None
        outbox = Outbox(settings.webhooks)
        bus = EventBus()
        queue = TaskQueue(
            settings, db, client, manager, bus, drafts, egress, drafts_root.path, outbox
        )
        # A cluster's nodes share their events through Redis (cluster/events.py).
        events = None
        if settings.cluster and settings.redis_url is not None:
            redis_url = settings.redis_url.get_secret_value()
            events = ClusterEvents(bus, queue, redis_url, settings.node)
        if settings.webhook_secret is not None:
            signing = settings.webhook_secret.get_secret_value()
        else:
            signing = await asyncio.to_thread(webhook_secret.load_or_create, settings.data_dir)
        sender = WebhookSender(settings, db.outbox, signing, queue.source_policy)
        outbox.on_stored = sender.wake
        # A worker claims tasks from the queue on PostgreSQL (cluster/worker.py).
        worker = Worker(settings, db, queue) if settings.role == "worker" else None
        # Controls of tasks another node holds are run there (cluster/control.py).
        channel = None
        if settings.cluster:
            channel = ControlChannel(settings, db.runner, queue if runs_tasks else None)
            queue.channel = channel
        sends_webhooks = settings.role != "worker"  # one kind of node sends them

        try:
            if pool is not None:
                pool.start()  # in the background: ready by the first build, not awaited here
            if egress is not None:
                await egress.start()
            if events is not None:
                await events.start()  # before the queue: its first events are relayed
            if runs_tasks:
                await manager.start()
                manager.start_health_check()
            await queue.start()
            if worker is not None:
                await worker.register()  # its name first: nothing acts for it before
            if channel is not None:
                channel.start()
            if worker is not None:
                await worker.start()  # after the queue: what it claims, the queue runs
            if sends_webhooks:
                sender.start()  # after the queue: what a restart recovers is stored by then
            services = Services(settings, db, manager, queue, drafts_root)
            app.state.services = gateway.services = services
            log.info(
                "draftdl %s ready (role %s%s); data in %s",
                __version__,
                settings.role,
                f", node {settings.node}" if settings.cluster else "",
                settings.data_dir.resolve(),
            )
            yield
        finally:
            await gateway.close()
            if worker is not None:
                await worker.stop()  # no more claims while the queue stops
            if channel is not None:
                await channel.stop()
            await queue.stop()
            if pool is not None:  # after the queue: its builds had shutdown_grace
                await pool.close()
            await sender.stop()
            if events is not None:
                await events.aclose()
            if egress is not None:
                await egress.stop()
            await manager.stop()
            if worker is not None:  # once its aria2c has stopped writing their files
                await worker.release()
            await client.aclose()
            await db.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The data folder is locked before anything in it is touched (DataDirLocked if another
        server has it); ``draftdl serve`` hands over the lock it took in ``app.state``."""
        taken = getattr(app.state, "data_dir_lock", None)
        with await asyncio.to_thread(hold_data_dir, settings.data_dir, taken):
            async with run_parts(app), mcp.run(app):  # MCP stops before the parts
                yield

    app = FastAPI(
        title="draftdl",
        version=__version__,
        summary="Downloads the media of JianYing draft jobs through aria2c and builds the drafts.",
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves them, behind the token
        redoc_url=None,
        openapi_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.add_middleware(
        HostGuard, allowed=[settings.host, *settings.allowed_hosts], origins=settings.cors_origins
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    install_error_handlers(app)
    auth = [Depends(require_token)]
    # 403: HostGuard refuses a change from another site's page, and any request our own
    # aria2c makes (a job's URL that leads here); 401 when a token is set.
    refused = {**errors(403), **(errors(401) if configured_token(settings) else {})}
    app.include_router(  # before tasks: /api/tasks/stream is not a task id
        sse.router,
        dependencies=[Depends(require_token_or_query)],
        responses=refused,
    )
    app.include_router(tasks.router, dependencies=auth, responses=refused)
    app.include_router(control.router, dependencies=auth, responses=refused)
    app.include_router(control.limits_router, dependencies=auth, responses=refused)
    app.include_router(drafts.router, dependencies=auth, responses=refused)
    app.include_router(webhooks.router, dependencies=auth, responses=refused)
    app.include_router(health.router, dependencies=auth, responses=refused)
    app.include_router(health.bare_router, dependencies=auth)
    install_docs(app)
    install_pages(app)
    app.mount("/socket.io", gateway.asgi_app())
    mcp.install(app)
    return app
