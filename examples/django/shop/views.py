"""Sign-up: a customer and a welcome job in one transaction; an async view that sends it again."""

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from foundry.contrib.django import async_dispatcher, dispatcher
from shop.jobs import send_welcome
from shop.models import Customer


class PaymentRefused(Exception):
    """The sign-up fails after the customer and the job were made: both must vanish."""


@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    try:
        with transaction.atomic():
            customer = Customer.objects.create(email=request.POST["email"])
            job_id = dispatcher().dispatch(send_welcome, {"customer_id": customer.pk})
            if request.POST.get("card") == "declined":
                raise PaymentRefused("card declined")
    except PaymentRefused as refused:
        return JsonResponse({"error": str(refused)}, status=402)
    return JsonResponse({"customer": customer.pk, "job": job_id}, status=201)


@require_POST
async def welcome_again(request: HttpRequest, customer_id: int) -> JsonResponse:
    """An async view: the async dispatcher sends without blocking the event loop (no atomic
    block is open on the loop's thread, so the job leaves at once)."""
    customer = await Customer.objects.aget(pk=customer_id)
    job_id = await async_dispatcher().dispatch(send_welcome, {"customer_id": customer.pk})
    return JsonResponse({"job": job_id}, status=202)
