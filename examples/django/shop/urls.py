from django.urls import path

from shop.views import signup, welcome_again

urlpatterns = [
    path("signup", signup),
    path("customers/<int:customer_id>/welcome", welcome_again),
]
