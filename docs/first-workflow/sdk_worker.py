"""The handlers of shop/welcome (docs/first-workflow.md) with Tasker's
Python SDK. From docs/first-workflow/:

    pip install ../../sdks/python
    tasker-worker sdk_worker:app
"""

from tasker import PermanentError, RetryableError, StepContext, Worker

app = Worker(concurrency=4)


@app.handler("shop", "shop.greet")
def greet(ctx: StepContext) -> dict:
    name = ctx.context.get("name", "")
    if not name:
        raise PermanentError("context.name is empty", error_type="invalid_name")
    if ctx.attempt <= ctx.context.get("fail_times", 0):
        raise RetryableError(f"failing attempt {ctx.attempt} on purpose", error_type="flaky_greeting")
    return {"greeting": f"Hello, {name}!"}


@app.handler("shop", "shop.shout")
def shout(ctx: StepContext) -> dict:
    greeting = (ctx.parent("greet") or {}).get("greeting")
    if not isinstance(greeting, str):
        raise PermanentError('step "greet" returned no greeting', error_type="no_greeting")
    return {"message": greeting.upper()}
