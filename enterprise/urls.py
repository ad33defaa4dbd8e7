from django.urls import path

from enterprise import views

app_name = "enterprise"

urlpatterns = [
    path("", views.tree, name="tree"),
    path("search/", views.search, name="search"),
    path("nodes/<int:node_id>/", views.node_detail, name="node"),
    path("nodes/<int:node_id>/children/", views.node_children, name="node-children"),
    path("nodes/<int:node_id>/limit/", views.node_limit_change, name="node-limit"),
    path("nodes/<int:node_id>/move/", views.node_headroom_move, name="node-move"),
    path("nodes/<int:node_id>/history/", views.node_history, name="node-history"),
]
